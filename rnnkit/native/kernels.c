/* Every native kernel, for float32 and float64 (rnnkit/native/__init__.py builds this file). */
#define REAL float
#define REAL_IS_FLOAT 1
#define SUFFIX _f32
#include "common.h"
#include "lnlstm.c"
#include "bnlstm.c"
#undef REAL
#undef REAL_IS_FLOAT
#undef SUFFIX

#define REAL double
#define REAL_IS_FLOAT 0
#define SUFFIX _f64
#include "common.h"
#include "lnlstm.c"
#include "bnlstm.c"
