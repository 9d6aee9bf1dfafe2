#ifndef CASEBRIDGE_CNGHTTP2_SHIM_H
#define CASEBRIDGE_CNGHTTP2_SHIM_H
#include <nghttp2/nghttp2.h>

// NGHTTP2_DATA_FLAG_* and NGHTTP2_ERR_DEFERRED are enum members with C int types that Swift
// imports as UInt32/Int32 inconsistently across versions; give them fixed types.
static inline uint32_t cb_nghttp2_data_flag_eof(void) { return NGHTTP2_DATA_FLAG_EOF; }
static inline uint32_t cb_nghttp2_data_flag_no_end_stream(void) { return NGHTTP2_DATA_FLAG_NO_END_STREAM; }
static inline int cb_nghttp2_err_deferred(void) { return NGHTTP2_ERR_DEFERRED; }
#endif
