#!/usr/bin/env python3
"""Writes the Swift value types for every message in a FileDescriptorSet.

Called by scripts/generate-proto. The types only declare fields and map them to
field numbers; all wire work is done by the descriptor-driven codec in
Sources/CaseBridgeProto/Codec.
"""
import os
import sys

from google.protobuf import descriptor_pb2 as d

# Swift namespace (a caseless enum) for each proto package; None = top level.
NAMESPACES = {
    "casebridge.v1": None,
    "grpc.health.v1": "GRPCHealth",
    "grpc.reflection.v1": "GRPCReflectionV1",
    "grpc.reflection.v1alpha": "GRPCReflectionV1Alpha",
    "grpc.testing": "GRPCTesting",
}
SWIFT_KEYWORDS = {"case", "class", "default", "enum", "extension", "func", "import", "in", "init",
                  "internal", "is", "let", "operator", "protocol", "public", "return", "self",
                  "static", "struct", "subscript", "switch", "type", "var", "where", "while"}
F = d.FieldDescriptorProto
SCALARS = {
    F.TYPE_DOUBLE: "Double", F.TYPE_FLOAT: "Float", F.TYPE_INT64: "Int64", F.TYPE_UINT64: "UInt64",
    F.TYPE_INT32: "Int32", F.TYPE_FIXED64: "UInt64", F.TYPE_FIXED32: "UInt32", F.TYPE_BOOL: "Bool",
    F.TYPE_STRING: "String", F.TYPE_BYTES: "[UInt8]", F.TYPE_UINT32: "UInt32", F.TYPE_SFIXED32: "Int32",
    F.TYPE_SFIXED64: "Int64", F.TYPE_SINT32: "Int32", F.TYPE_SINT64: "Int64",
}
DEFAULTS = {"Double": "0", "Float": "0", "Int64": "0", "UInt64": "0", "Int32": "0", "UInt32": "0",
            "Bool": "false", "String": '""', "[UInt8]": "[]"}


def camel(name, upper=False):
    parts = name.split("_")
    out = parts[0] if not upper else parts[0][:1].upper() + parts[0][1:]
    for p in parts[1:]:
        out += {"id": "ID", "ids": "IDs"}.get(p) or p[:1].upper() + p[1:]
    return out


def ident(name):
    return f"`{name}`" if name in SWIFT_KEYWORDS else name


def upper_snake(name):
    out = ""
    for i, c in enumerate(name):
        if c.isupper() and i > 0 and not name[i - 1].isupper():
            out += "_"
        out += c.upper()
    return out


class Generator:
    def __init__(self, fds):
        self.swift_names = {}  # ".pkg.Msg" -> Swift type path
        for f in fds.file:
            ns = NAMESPACES[f.package]
            prefix = f"{ns}." if ns else ""
            for m in f.message_type:
                self.register_message(f".{f.package}", prefix, m)
            for e in f.enum_type:
                self.swift_names[f".{f.package}.{e.name}"] = prefix + e.name

    def register_message(self, scope, prefix, m):
        full = f"{scope}.{m.name}"
        self.swift_names[full] = prefix + m.name
        for e in m.enum_type:
            self.swift_names[f"{full}.{e.name}"] = f"{prefix}{m.name}.{e.name}"
        for n in m.nested_type:
            self.register_message(full, f"{prefix}{m.name}.", n)

    def field_type(self, fld):
        if fld.type in (F.TYPE_MESSAGE, F.TYPE_ENUM):
            return self.swift_names[fld.type_name]
        return SCALARS[fld.type]

    def enum(self, e, indent):
        p = " " * indent
        prefix = upper_snake(e.name) + "_"
        lines = [f"{p}public struct {e.name}: ProtoEnum {{",
                 f"{p}    public var rawValue: Int32",
                 f"{p}    public init(rawValue: Int32) {{ self.rawValue = rawValue }}"]
        names = []
        for v in e.value:
            short = v.name[len(prefix):] if v.name.startswith(prefix) else v.name
            swift = ident(camel(short.lower()))
            names.append((v.number, short.lower()))
            lines.append(f"{p}    public static let {swift} = Self(rawValue: {v.number})")
        table = ", ".join(f'{n}: "{s}"' for n, s in names)
        lines.append(f"{p}    /// Value names as in the .proto file, lower case, without the enum's prefix.")
        lines.append(f"{p}    public static let names: [Int32: String] = [{table}]")
        lines.append(f"{p}}}")
        return lines

    def message(self, scope, m, indent, proto_name):
        p = " " * indent
        lines = [f"{p}public struct {m.name}: ProtoMessage {{",
                 f'{p}    public static let protoName = "{proto_name}"']
        oneofs = {}
        for fld in m.field:
            if fld.HasField("oneof_index") and not fld.proto3_optional:
                oneofs.setdefault(fld.oneof_index, []).append(fld)
        decode, encode = [], []
        for fld in m.field:
            if fld.HasField("oneof_index") and not fld.proto3_optional:
                continue
            name = ident(camel(fld.name))
            t = self.field_type(fld)
            if fld.label == F.LABEL_REPEATED:
                lines.append(f"{p}    public var {name}: [{t}] = []")
                decode.append(f"{name} = fields.values({fld.number})")
            elif fld.type == F.TYPE_MESSAGE:
                lines.append(f"{p}    public var {name}: {t}? = nil")
                decode.append(f"{name} = fields.optional({fld.number})")
            else:
                default = DEFAULTS.get(t, ".init(rawValue: 0)")
                lines.append(f"{p}    public var {name}: {t} = {default}")
                decode.append(f"{name} = fields.value({fld.number})")
            encode.append(f"fields.set({fld.number}, {name})")
        for index, members in oneofs.items():
            oname = m.oneof_decl[index].name
            tname = camel(oname, upper=True)
            prop = ident(camel(oname))
            lines.append(f"{p}    public var {prop}: {tname}? = nil")
            lines.append(f"{p}    public enum {tname}: Sendable, Equatable {{")
            for fld in members:
                lines.append(f"{p}        case {ident(camel(fld.name))}({self.field_type(fld)})")
            lines.append(f"{p}    }}")
            first = True
            for fld in members:
                kw = "if" if first else "} else if"
                decode.append(f"{kw} let v: {self.field_type(fld)} = fields.optional({fld.number}) {{ {prop} = .{ident(camel(fld.name))}(v)")
                first = False
            decode.append("}")
            encode.append(f"switch {prop} {{")
            for fld in members:
                encode.append(f"case .{ident(camel(fld.name))}(let v)?: fields.set({fld.number}, v)")
            encode.append("case nil: break")
            encode.append("}")
        lines.append(f"{p}    public init() {{}}")
        lines.append(f"{p}    public init(fields: ProtoFields) {{")
        lines += [f"{p}        {l}" for l in decode]
        lines.append(f"{p}    }}")
        lines.append(f"{p}    public var protoFields: ProtoFields {{")
        if encode:
            lines.append(f"{p}        var fields = ProtoFields()")
            lines += [f"{p}        {l}" for l in encode]
            lines.append(f"{p}        return fields")
        else:
            lines.append(f"{p}        ProtoFields()")
        lines.append(f"{p}    }}")
        for e in m.enum_type:
            lines += self.enum(e, indent + 4)
        for n in m.nested_type:
            lines += self.message(scope, n, indent + 4, f"{proto_name}.{n.name}")
        lines.append(f"{p}}}")
        return lines

    def service(self, pkg, s, indent):
        p = " " * indent
        lines = [f"{p}public enum {s.name} {{",
                 f'{p}    public static let serviceName = "{pkg}.{s.name}"']
        for mth in s.method:
            req, resp = self.swift_names[mth.input_type], self.swift_names[mth.output_type]
            cs = "true" if mth.client_streaming else "false"
            ss = "true" if mth.server_streaming else "false"
            lines.append(f"{p}    public static let {ident(camel(mth.name[:1].lower() + mth.name[1:]))} = "
                         f'RPCMethod<{req}, {resp}>(service: serviceName, name: "{mth.name}", '
                         f"clientStreaming: {cs}, serverStreaming: {ss})")
        lines.append(f"{p}}}")
        return lines

    def file(self, f):
        ns = NAMESPACES[f.package]
        indent = 4 if ns else 0
        body = []
        for e in f.enum_type:
            body += self.enum(e, indent) + [""]
        for m in f.message_type:
            body += self.message(f.package, m, indent, f"{f.package}.{m.name}") + [""]
        for s in f.service:
            body += self.service(f.package, s, indent) + [""]
        out = ["// Generated by scripts/generate-proto from proto/" + f.name + ". DO NOT EDIT!", ""]
        if ns:
            out += [f"extension {ns} {{"] + body[:-1] + ["}"]
        else:
            out += body[:-1]
        return "\n".join(l.rstrip() for l in out) + "\n"


def main():
    descriptor_set, out_dir = sys.argv[1], sys.argv[2]
    fds = d.FileDescriptorSet()
    with open(descriptor_set, "rb") as fh:
        fds.ParseFromString(fh.read())
    gen = Generator(fds)
    namespaces = sorted({ns for ns in NAMESPACES.values() if ns})
    with open(os.path.join(out_dir, "Namespaces.swift"), "w") as fh:
        fh.write("// Generated by scripts/generate-proto. DO NOT EDIT!\n\n")
        for ns in namespaces:
            fh.write(f"/// Types of a standard gRPC package, kept apart from CaseBridge's own.\npublic enum {ns} {{}}\n")
    for f in fds.file:
        name = f.name.replace("/", "_").replace(".proto", ".swift")
        with open(os.path.join(out_dir, name), "w") as fh:
            fh.write(gen.file(f))


if __name__ == "__main__":
    main()
