/* What every kernel shares: name suffixes per precision, a vectorisable exp, the activations,
 * and row moments. Included once per precision by kernels.c, before the kernels. */
#include <stddef.h>
#include <math.h>

#ifndef NAME
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define NAME(base) CAT(base, SUFFIX)
#endif

#ifndef NORM_EPS
#define NORM_EPS 1e-5 /* the default of F.layer_norm and F.batch_norm */
#endif

#if REAL_IS_FLOAT
/* e^x in float, written so the compiler vectorises it (libm's expf is a call per element, which
 * made the kernel slower than PyTorch's vectorised passes). Cody-Waite reduction x = k ln2 + r,
 * |r| <= ln2 / 2, and Cephes' degree-6 polynomial for e^r: about 2 ulp. NaN stays NaN (the
 * comparisons below are false for it), so a diverged run still shows a NaN loss. */
static inline float NAME(exp_)(float x) {
    x = x > 88.0f ? 88.0f : x;
    x = x < -87.0f ? -87.0f : x;
    float k = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - k * 0.693359375f + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int i; float f; } scale = {.i = ((int)k + 127) << 23};
    return p * scale.f;
}
#else
static inline double NAME(exp_)(double x) { return exp(x); }
#endif

static inline REAL NAME(sigm)(REAL x) { return (REAL)1 / ((REAL)1 + NAME(exp_)(-x)); }
/* tanh x = 2 σ(2x) - 1: absolute error a few float epsilons near 0, which is what a gate needs */
static inline REAL NAME(tanh_)(REAL x) { return (REAL)2 / ((REAL)1 + NAME(exp_)(-2 * x)) - (REAL)1; }

/* mean and 1 / sqrt(variance + eps) of n values (two passes, as PyTorch computes them) */
static inline void NAME(moments)(const REAL *restrict x, ptrdiff_t n, REAL *mean, REAL *rstd) {
    double m = 0, v = 0;
    for (ptrdiff_t k = 0; k < n; k++) m += x[k];
    m /= (double)n;
    for (ptrdiff_t k = 0; k < n; k++) { double d = x[k] - m; v += d * d; }
    v /= (double)n;
    *mean = (REAL)m;
    *rstd = (REAL)(1.0 / sqrt(v + NORM_EPS));
}

