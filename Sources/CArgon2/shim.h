#ifndef CASEBRIDGE_CARGON2_SHIM_H
#define CASEBRIDGE_CARGON2_SHIM_H
#include <argon2.h>
#endif
