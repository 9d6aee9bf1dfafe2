#ifndef CASEBRIDGE_CPROTOBUFC_SHIM_H
#define CASEBRIDGE_CPROTOBUFC_SHIM_H
#include <protobuf-c/protobuf-c.h>

// PROTOBUF_C_FIELD_FLAG_* are enum members; the flag test reads better on the C side.
static inline int cb_field_is_oneof(const ProtobufCFieldDescriptor *f) { return (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0; }
// The same test on a descriptor passed by value (as Swift copies it out of the fields array).
static inline int cb_field_is_oneof_value(ProtobufCFieldDescriptor f) { return (f.flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0; }
#endif
