#ifndef CASEBRIDGE_CICU_SHIM_H
#define CASEBRIDGE_CICU_SHIM_H
#include <unicode/utrans.h>

// ICU renames its functions per version with macros (utrans_openU becomes utrans_openU_72), which
// Swift cannot see through: these wrappers give the renamed functions one stable name.

static inline UTransliterator *casebridge_utrans_open(const UChar *id, int32_t length, UErrorCode *status) {
    return utrans_openU(id, length, UTRANS_FORWARD, NULL, 0, NULL, status);
}

static inline void casebridge_utrans_transliterate(const UTransliterator *transliterator, UChar *text,
                                                   int32_t *length, int32_t capacity, UErrorCode *status) {
    int32_t limit = *length;
    utrans_transUChars(transliterator, text, length, capacity, 0, &limit, status);
}

static inline void casebridge_utrans_close(UTransliterator *transliterator) { utrans_close(transliterator); }

static inline int casebridge_u_failure(UErrorCode status) { return U_FAILURE(status); }

#endif
