// An NCCT node written from proto/ alone with grpc-go (Debian's 1.33) and Go types protoc-gen-go
// made from proto/, in memory: a second, non-Python implementation that `casebridge conformance
// --as embassy` is run against. It keeps the rules of proto/casebridge/v1/exchange.proto as an
// NCCT node must towards one embassy (it trusts that every caller is -caller).
//
//	fakencct -ca CA -cert CERT -key KEY -caller NODE_ID   prints "PORT n", serves until stdin closes
//
// Built by Tests/Peers/build-go-peer (GOPATH mode, offline, from Debian's packages).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"os"
	"regexp"
	"sync"
	"time"

	pb "github.com/casebridge/casebridge-proto/gen/go/casebridge/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// rawCodec hands handlers the bytes as they arrived (a node stores messages byte for byte) and
// leaves everything else to grpc-go's own protobuf codec.
type rawCodec struct{}

var protoCodec = encoding.GetCodec("proto")

func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	if raw, ok := v.(*[]byte); ok {
		return *raw, nil
	}
	return protoCodec.Marshal(v)
}

func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	if raw, ok := v.(*[]byte); ok {
		*raw = append([]byte(nil), data...)
		return nil
	}
	return protoCodec.Unmarshal(data, v)
}

func (rawCodec) String() string { return "proto" }

type entry struct {
	updateID string
	raw      []byte
	refusal  *refusal // nil: applied
}

type refusal struct {
	code    codes.Code
	name    string // the gRPC code's name, or SKIPPED
	message string
}

type caseState struct {
	request *pb.InterventionRequest
	raw     []byte
	status  pb.CaseStatus
	persons []*pb.PersonState
	entries map[uint64]entry
	order   []uint64
	created int64
	updated int64
}

type fakeNCCT struct {
	mu     sync.Mutex
	caller string
	cases  map[string]*caseState
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

func nowMs() int64 { return time.Now().UnixNano() / int64(time.Millisecond) }

func refuse(code codes.Code, format string, args ...interface{}) error {
	return status.Errorf(code, format, args...)
}

func (f *fakeNCCT) submit(raw []byte) (*pb.SubmitReceipt, error) {
	request := &pb.InterventionRequest{}
	if err := proto.Unmarshal(raw, request); err != nil {
		return nil, refuse(codes.InvalidArgument, "not an InterventionRequest")
	}
	if request.OriginNode != f.caller {
		return nil, refuse(codes.PermissionDenied, "origin_node %s is not the caller", request.OriginNode)
	}
	for i, person := range request.Persons {
		if person.Phone != "" && !e164.MatchString(person.Phone) {
			return nil, refuse(codes.InvalidArgument, "persons[%d].phone: must be E.164", i)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if existing, ok := f.cases[request.RequestId]; ok {
		if !proto.Equal(existing.request, request) {
			return nil, refuse(codes.AlreadyExists, "request_id was already used for other content")
		}
		return &pb.SubmitReceipt{RequestId: request.RequestId, CaseId: request.RequestId, Status: existing.status,
			AlreadyReceived: true, ReceiverNode: "ncct", ReceivedAtMs: existing.created}, nil
	}
	c := &caseState{request: request, raw: raw, status: pb.CaseStatus_CASE_STATUS_RECEIVED,
		entries: map[uint64]entry{}, created: nowMs(), updated: nowMs()}
	for _, person := range request.Persons {
		c.persons = append(c.persons, &pb.PersonState{PersonRef: person.PersonRef, Status: pb.PersonStatus_PERSON_STATUS_PENDING})
	}
	f.cases[request.RequestId] = c
	return &pb.SubmitReceipt{RequestId: request.RequestId, CaseId: request.RequestId,
		Status: pb.CaseStatus_CASE_STATUS_RECEIVED, ReceiverNode: "ncct", ReceivedAtMs: c.created}, nil
}

func withoutSkipped(update *pb.CaseUpdate) *pb.CaseUpdate {
	copy := proto.Clone(update).(*pb.CaseUpdate)
	copy.SkippedSequences = nil
	return copy
}

func (f *fakeNCCT) push(ctx context.Context, raw []byte) (*pb.UpdateReceipt, error) {
	update := &pb.CaseUpdate{}
	if err := proto.Unmarshal(raw, update); err != nil {
		return nil, refuse(codes.InvalidArgument, "not a CaseUpdate")
	}
	if update.ActorNode != f.caller {
		return nil, refuse(codes.PermissionDenied, "actor_node is not the caller")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cases[update.CaseId]
	if !ok {
		return nil, refuse(codes.NotFound, "no case %s", update.CaseId)
	}
	switch change := update.Change.(type) {
	case *pb.CaseUpdate_StepChange, *pb.CaseUpdate_PersonOutcomes, *pb.CaseUpdate_InformationRequest:
		return nil, refuse(codes.PermissionDenied, "only NCCT makes this change")
	case *pb.CaseUpdate_StatusChange:
		if change.StatusChange.ToStatus != pb.CaseStatus_CASE_STATUS_ENTERED_IN_ERROR {
			return nil, refuse(codes.PermissionDenied, "an embassy may only set entered_in_error")
		}
	}
	for sequence, e := range c.entries {
		if e.updateID != update.UpdateId {
			continue
		}
		first := &pb.CaseUpdate{}
		_ = proto.Unmarshal(e.raw, first)
		if !proto.Equal(withoutSkipped(first), withoutSkipped(update)) {
			return nil, refuse(codes.AlreadyExists, "update_id was already used for other content")
		}
		if e.refusal != nil {
			return nil, status.Error(e.refusal.code, e.refusal.message)
		}
		return &pb.UpdateReceipt{UpdateId: update.UpdateId, CaseId: update.CaseId, Sequence: sequence,
			AlreadyApplied: true, Status: c.status, AppliedAtMs: nowMs()}, nil
	}
	var last uint64
	for sequence := range c.entries {
		if sequence > last {
			last = sequence
		}
	}
	expected := func(next uint64) {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("casebridge-expected-sequence", fmt.Sprint(next)))
	}
	if update.Sequence <= last {
		expected(last + 1)
		return nil, refuse(codes.AlreadyExists, "sequence %d is already taken", update.Sequence)
	}
	skipped := map[uint64]bool{}
	for _, sequence := range update.SkippedSequences {
		skipped[sequence] = true
	}
	missing := last + 1
	for missing < update.Sequence && skipped[missing] {
		missing++
	}
	if missing != update.Sequence {
		expected(missing)
		return nil, refuse(codes.FailedPrecondition, "sequence gap: expected %d", missing)
	}
	for sequence := last + 1; sequence < update.Sequence; sequence++ {
		c.entries[sequence] = entry{updateID: fmt.Sprintf("skipped/%d", sequence),
			refusal: &refusal{name: "SKIPPED", message: "the sender gave up on it"}}
		c.order = append(c.order, sequence)
	}
	if err := apply(c, update); err != nil {
		s := status.Convert(err)
		c.entries[update.Sequence] = entry{updateID: update.UpdateId, raw: raw,
			refusal: &refusal{code: s.Code(), name: codeName(s.Code()), message: s.Message()}}
		c.order = append(c.order, update.Sequence)
		return nil, err
	}
	c.entries[update.Sequence] = entry{updateID: update.UpdateId, raw: raw}
	c.order = append(c.order, update.Sequence)
	c.updated = nowMs()
	return &pb.UpdateReceipt{UpdateId: update.UpdateId, CaseId: update.CaseId, Sequence: update.Sequence,
		Status: c.status, AppliedAtMs: nowMs()}, nil
}

var open = map[pb.CaseStatus]bool{
	pb.CaseStatus_CASE_STATUS_RECEIVED: true, pb.CaseStatus_CASE_STATUS_ACKNOWLEDGED: true,
	pb.CaseStatus_CASE_STATUS_IN_PROGRESS: true, pb.CaseStatus_CASE_STATUS_INFO_REQUESTED: true,
	pb.CaseStatus_CASE_STATUS_ON_HOLD: true,
}

// apply takes an embassy's change, as the lifecycle tables in case.proto allow it.
func apply(c *caseState, update *pb.CaseUpdate) error {
	switch change := update.Change.(type) {
	case *pb.CaseUpdate_Note:
		return nil
	case *pb.CaseUpdate_InformationProvided:
		if !open[c.status] {
			return refuse(codes.FailedPrecondition, "the case is %s; it takes only notes", c.status)
		}
		if c.status == pb.CaseStatus_CASE_STATUS_INFO_REQUESTED {
			c.status = pb.CaseStatus_CASE_STATUS_ACKNOWLEDGED
		}
	case *pb.CaseUpdate_Withdrawal:
		if c.status != pb.CaseStatus_CASE_STATUS_WITHDRAWN {
			if !open[c.status] {
				return refuse(codes.FailedPrecondition, "a case cannot go from %s to withdrawn", c.status)
			}
			c.status = pb.CaseStatus_CASE_STATUS_WITHDRAWN
		}
	case *pb.CaseUpdate_StatusChange:
		c.status = change.StatusChange.ToStatus
	default:
		return refuse(codes.InvalidArgument, "change: an update must carry one change")
	}
	return nil
}

func codeName(code codes.Code) string {
	names := map[codes.Code]string{codes.InvalidArgument: "INVALID_ARGUMENT", codes.NotFound: "NOT_FOUND",
		codes.FailedPrecondition: "FAILED_PRECONDITION", codes.PermissionDenied: "PERMISSION_DENIED"}
	if name, ok := names[code]; ok {
		return name
	}
	return "UNKNOWN"
}

func field(out []byte, number protowire.Number, data []byte) []byte {
	out = protowire.AppendTag(out, number, protowire.BytesType)
	return protowire.AppendBytes(out, data)
}

// getCase answers with the request and every update as they arrived, around the state it keeps.
func (f *fakeNCCT) getCase(request *pb.GetCaseRequest) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cases[request.CaseId]
	if !ok {
		return nil, refuse(codes.NotFound, "no case %s", request.CaseId)
	}
	view := &pb.Case{CaseId: request.CaseId, Status: c.status, Persons: c.persons,
		RequestingNode: c.request.OriginNode, CreatedAtMs: c.created, UpdatedAtMs: c.updated}
	out, err := proto.Marshal(view)
	if err != nil {
		return nil, err
	}
	out = field(out, 2, c.raw)
	for _, sequence := range c.order {
		if e := c.entries[sequence]; e.refusal == nil {
			out = field(out, 7, e.raw)
		}
	}
	for _, sequence := range c.order {
		e := c.entries[sequence]
		if e.refusal == nil {
			continue
		}
		refused := &pb.RefusedUpdate{ActorNode: f.caller, Sequence: sequence, Code: e.refusal.name, Reason: e.refusal.message}
		if e.refusal.name != "SKIPPED" {
			refused.UpdateId = e.updateID
		}
		part, _ := proto.Marshal(refused)
		if e.refusal.name != "SKIPPED" {
			part = field(part, 7, e.raw)
		}
		out = field(out, 12, part)
	}
	return out, nil
}

func (f *fakeNCCT) summaries() []*pb.CaseSummary {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*pb.CaseSummary
	for id, c := range f.cases {
		var last uint64
		for sequence := range c.entries {
			if sequence > last {
				last = sequence
			}
		}
		out = append(out, &pb.CaseSummary{CaseId: id, RequestingNode: c.request.OriginNode, Kind: c.request.Kind,
			Status: c.status, PersonCount: uint32(len(c.persons)), EmbassySequence: last, Test: c.request.Test,
			CreatedAtMs: c.created, UpdatedAtMs: c.updated})
	}
	return out
}

// methodHandler is grpc-go's (unexported) type of a unary handler.
type methodHandler = func(srv interface{}, ctx context.Context, dec func(interface{}) error,
	_ grpc.UnaryServerInterceptor) (interface{}, error)

func unary(handle func(ctx context.Context, raw []byte) (interface{}, error)) methodHandler {
	return func(srv interface{}, ctx context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
		var raw []byte
		if err := dec(&raw); err != nil {
			return nil, err
		}
		return handle(ctx, raw)
	}
}

func serviceDesc(f *fakeNCCT) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: "casebridge.v1.CaseExchange",
		HandlerType: (*interface{})(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "SubmitRequest", Handler: unary(func(_ context.Context, raw []byte) (interface{}, error) {
				return f.submit(raw)
			})},
			{MethodName: "PushUpdate", Handler: unary(func(ctx context.Context, raw []byte) (interface{}, error) {
				return f.push(ctx, raw)
			})},
			{MethodName: "GetCase", Handler: unary(func(_ context.Context, raw []byte) (interface{}, error) {
				request := &pb.GetCaseRequest{}
				if err := proto.Unmarshal(raw, request); err != nil {
					return nil, refuse(codes.InvalidArgument, "not a GetCaseRequest")
				}
				out, err := f.getCase(request)
				if err != nil {
					return nil, err
				}
				return &out, nil
			})},
		},
		Streams: []grpc.StreamDesc{{StreamName: "ListCases", ServerStreams: true,
			Handler: func(srv interface{}, stream grpc.ServerStream) error {
				var raw []byte
				if err := stream.RecvMsg(&raw); err != nil {
					return err
				}
				for _, summary := range f.summaries() {
					if err := stream.SendMsg(summary); err != nil {
						return err
					}
				}
				return nil
			}}},
		Metadata: "casebridge/v1/exchange.proto",
	}
}

func main() {
	ca := flag.String("ca", "", "the federation CA")
	cert := flag.String("cert", "", "this node's certificate")
	key := flag.String("key", "", "this node's key")
	caller := flag.String("caller", "", "the embassy node that calls")
	flag.Parse()
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		panic(err)
	}
	pem, err := ioutil.ReadFile(*ca)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	config := &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
	server := grpc.NewServer(grpc.Creds(credentials.NewTLS(config)), grpc.CustomCodec(rawCodec{}))
	fake := &fakeNCCT{caller: *caller, cases: map[string]*caseState{}}
	server.RegisterService(serviceDesc(fake), fake)
	checker := health.NewServer()
	checker.SetServingStatus("casebridge.v1.CaseExchange", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(server, checker)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Printf("PORT %d\n", listener.Addr().(*net.TCPAddr).Port)
	go func() { _ = server.Serve(listener) }()
	_, _ = io.Copy(ioutil.Discard, os.Stdin)
	server.GracefulStop()
}
