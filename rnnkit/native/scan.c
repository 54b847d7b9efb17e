/* The linear recurrence of the minimal cells (minGRU, minLSTM; rnnkit/cells/scan.py), one pass
 * over time: h_t = a_t h_{t-1} + b_t for t = 0..T-1 from h_{-1} = h0, for B sequences of H
 * columns (a, b, h: (B, T, H) contiguous; h0: (B, H)). With `reverse`, time runs from T-1 down to
 * 0 and step t reads a_{t+1} (1 at the last step), from a zero state: the backward pass's
 * g_t = dL/dh_t + a_{t+1} g_{t+1}, with b the incoming gradient; h0 is then not read.
 *
 * Every column is its own recurrence, so threads take contiguous shares of the B·H columns and
 * each walks its share through time; inner loops run along H, which the compiler vectorises. The
 * result does not depend on the number of threads. One read of a and b and one write of h, where
 * the chunked scan in PyTorch operations passes over them three times. */
void NAME(linear_recurrence)(ptrdiff_t B, ptrdiff_t T, ptrdiff_t H, ptrdiff_t reverse, const REAL *restrict a,
                             const REAL *restrict b, const REAL *restrict h0, REAL *restrict h) {
#pragma omp parallel num_threads(team_for(B * T * H))
    {
        ptrdiff_t lo, hi;
        share(B * H, &lo, &hi);
        for (ptrdiff_t s = lo / H; s < B && s * H < hi; s++) {
            const ptrdiff_t j0 = lo > s * H ? lo - s * H : 0, j1 = hi < (s + 1) * H ? hi - s * H : H;
            const REAL *restrict as = a + s * T * H, *restrict bs = b + s * T * H;
            REAL *restrict hs = h + s * T * H;
            if (!reverse) {
                const REAL *prev = h0 + s * H;
                for (ptrdiff_t t = 0; t < T; t++) {
                    for (ptrdiff_t j = j0; j < j1; j++) hs[t * H + j] = as[t * H + j] * prev[j] + bs[t * H + j];
                    prev = hs + t * H;
                }
            } else if (T > 0) {
                for (ptrdiff_t j = j0; j < j1; j++) hs[(T - 1) * H + j] = bs[(T - 1) * H + j];
                for (ptrdiff_t t = T - 2; t >= 0; t--)
                    for (ptrdiff_t j = j0; j < j1; j++)
                        hs[t * H + j] = as[(t + 1) * H + j] * hs[(t + 1) * H + j] + bs[t * H + j];
            }
        }
    }
}
