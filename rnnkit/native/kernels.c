/* Every native kernel, for float32 and float64 (rnnkit/native/__init__.py builds this file). */
#include <stddef.h>

/* Threads. Built with OpenMP where the compiler has it, the kernels split their rows (or columns)
 * among the threads PyTorch uses (Python sets the count with native_set_threads before a chunk;
 * the process shares one OpenMP runtime, so the kernels reuse the threads of PyTorch's matrix
 * multiplies). Without OpenMP the pragmas are ignored and every kernel runs on one thread. */
#ifdef _OPENMP
#include <omp.h>
#else
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
#endif

static int team_size = 1;

void native_set_threads(int threads) { team_size = threads < 1 ? 1 : threads; }

/* Below this many elements a kernel runs on one thread: starting a team costs a few microseconds,
 * more than it saves on a small batch. */
#define PARALLEL_MIN 16384

static inline int team_for(ptrdiff_t elements) { return elements < PARALLEL_MIN ? 1 : team_size; }

/* Inside a parallel region: this thread's share [lo, hi) of n columns, cut at multiples of 16 (whole
 * cache lines of floats), for the column reductions of batch normalisation. */
static inline void share(ptrdiff_t n, ptrdiff_t *lo, ptrdiff_t *hi) {
    const ptrdiff_t threads = omp_get_num_threads(), id = omp_get_thread_num();
    const ptrdiff_t per = ((n + threads - 1) / threads + 15) / 16 * 16;
    *lo = id * per < n ? id * per : n;
    *hi = *lo + per < n ? *lo + per : n;
}

#define REAL float
#define REAL_IS_FLOAT 1
#define SUFFIX _f32
#include "common.h"
#include "lnlstm.c"
#include "bnlstm.c"
#include "scan.c"
#include "gfrnn.c"
#undef REAL
#undef REAL_IS_FLOAT
#undef SUFFIX

#define REAL double
#define REAL_IS_FLOAT 0
#define SUFFIX _f64
#include "common.h"
#include "lnlstm.c"
#include "bnlstm.c"
#include "scan.c"
#include "gfrnn.c"
