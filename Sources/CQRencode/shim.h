#ifndef CASEBRIDGE_CQRENCODE_SHIM_H
#define CASEBRIDGE_CQRENCODE_SHIM_H
#include <qrencode.h>
#endif
