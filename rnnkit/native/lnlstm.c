/* The element-wise part of one time step of the layer-normalised LSTM, forward and backward,
 * in one pass over each row. The matrix multiplies stay in PyTorch (rnnkit/cells/layernorm_sequence.py
 * calls them); written out as PyTorch operations, this part is about a dozen passes over
 * (B, 4H) tensors per step, each with its own allocation, and it, not the arithmetic, set the
 * speed of the cell.
 *
 * Layout: row-major, B rows; gates in PyTorch's order i, f, g, o, each an H-wide block of a 4H row.
 * Forward, per row b (z = h_prev W_hh^T, from PyTorch):
 *   n    = LN(z) per gate block            (n and 1 / deviation per block saved)
 *   a    = shifted + n * gain_hh            (shifted = x W_ih-side projection + b_hh)
 *   act  = sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)
 *   c    = f c_prev + i g
 *   th   = tanh(LN(c) * gain_c + bias_c)   (LN(c) and 1 / deviation saved)
 *   h    = o th
 * Backward, per row b, given dh (the output's gradient plus the next step's) and dc (the next
 * step's): the gradients of the gate pre-activations (which are also the input projection's), of z
 * and of c_prev, then the step's share of the four normalisation parameters' gradients (column sums
 * over the rows, while the step's slices are still in cache: a pass over the whole chunk's buffers
 * afterwards cost 18-28 ms of a 2 x 256 training step, this 3-4). A layer normalisation's backward
 * pass needs only its output before the gain (x̂) and 1 / deviation, which is why those are what
 * the forward pass saves.
 *
 * REAL is float or double: kernels.c includes this file once for each, with SUFFIX in the names,
 * after common.h (exp, activations, moments).
 */
void NAME(lnlstm_forward)(ptrdiff_t B, ptrdiff_t H, const REAL *restrict z, const REAL *restrict shifted,
                          const REAL *restrict gain_hh,
                          const REAL *restrict c_prev, const REAL *restrict gain_c, const REAL *restrict bias_c,
                          REAL *restrict n, REAL *restrict n_rstd, REAL *restrict act, REAL *restrict c,
                          REAL *restrict c_hat, REAL *restrict c_rstd,
                          REAL *restrict squashed, REAL *restrict h) {
    const ptrdiff_t G = 4 * H;
#pragma omp parallel for num_threads(team_for(B * G)) schedule(static)
    for (ptrdiff_t b = 0; b < B; b++) {
        const REAL *restrict zb = z + b * G, *restrict sb = shifted + b * G;
        REAL *restrict ab = act + b * G, *restrict nb = n + b * G;
        for (int k = 0; k < 4; k++) {
            REAL m, r;
            NAME(moments)(zb + k * H, H, &m, &r);
            n_rstd[b * 4 + k] = r;
            for (ptrdiff_t j = k * H; j < (k + 1) * H; j++) {
                nb[j] = (zb[j] - m) * r;
                ab[j] = sb[j] + nb[j] * gain_hh[j]; /* the pre-activation, squashed below */
            }
        }
        for (ptrdiff_t j = 0; j < 2 * H; j++) ab[j] = NAME(sigm)(ab[j]);
        for (ptrdiff_t j = 2 * H; j < 3 * H; j++) ab[j] = NAME(tanh_)(ab[j]);
        for (ptrdiff_t j = 3 * H; j < 4 * H; j++) ab[j] = NAME(sigm)(ab[j]);
        const REAL *restrict i = ab, *restrict f = ab + H, *restrict g = ab + 2 * H, *restrict o = ab + 3 * H;
        const REAL *restrict cp = c_prev + b * H;
        REAL *restrict cb = c + b * H, *restrict xb = c_hat + b * H, *restrict tb = squashed + b * H,
                     *restrict hb = h + b * H;
        for (ptrdiff_t j = 0; j < H; j++) cb[j] = f[j] * cp[j] + i[j] * g[j];
        REAL m, r;
        NAME(moments)(cb, H, &m, &r);
        c_rstd[b] = r;
        for (ptrdiff_t j = 0; j < H; j++) {
            xb[j] = (cb[j] - m) * r;
            tb[j] = NAME(tanh_)(xb[j] * gain_c[j] + bias_c[j]);
            hb[j] = o[j] * tb[j];
        }
    }
}

/* d loss / d x of y = x̂ * gain with x̂ = LN(x), into dx (n values), from dy, x̂ and r:
 * r (dx̂ - mean(dx̂) - x̂ mean(dx̂ x̂)) with dx̂ = dy * gain. dx may be dy. */
static inline void NAME(layer_norm_grad)(REAL *dx, const REAL *dy, const REAL *restrict xhat, REAL r,
                                         const REAL *restrict gain, ptrdiff_t n) {
    double s1 = 0, s2 = 0;
    for (ptrdiff_t k = 0; k < n; k++) {
        double d = dy[k] * gain[k];
        s1 += d;
        s2 += d * xhat[k];
    }
    s1 /= (double)n;
    s2 /= (double)n;
    for (ptrdiff_t k = 0; k < n; k++) dx[k] = (REAL)(r * (dy[k] * gain[k] - s1 - xhat[k] * s2));
}

/* sum_ab[j] += sum over rows of a[row, j] b[row, j], and sum_a[j] += sum over rows of a[row, j], for W
 * columns of R rows: a normalisation's gain and bias gradients over a whole chunk (the LN-LSTM's
 * input projection). Threads take contiguous shares of the columns (`share`, as the BN-LSTM's
 * reductions do), each summed over all rows in row order: the same result for any thread count.
 * sums: 2W doubles of scratch. */
void NAME(column_sums)(ptrdiff_t R, ptrdiff_t W, const REAL *restrict a, const REAL *restrict b,
                       double *restrict sums, REAL *restrict sum_ab, REAL *restrict sum_a) {
#pragma omp parallel num_threads(team_for(R * W))
    {
        ptrdiff_t lo, hi;
        share(W, &lo, &hi);
        double *restrict sab = sums + lo, *restrict sa = sums + W + lo;
        for (ptrdiff_t j = 0; j < hi - lo; j++) sab[j] = sa[j] = 0;
        for (ptrdiff_t r = 0; r < R; r++) {
            const REAL *restrict ar = a + r * W + lo, *restrict br = b + r * W + lo;
            for (ptrdiff_t j = 0; j < hi - lo; j++) {
                sab[j] += (double)ar[j] * br[j];
                sa[j] += ar[j];
            }
        }
        for (ptrdiff_t j = 0; j < hi - lo; j++) {
            sum_ab[lo + j] += (REAL)sab[j];
            sum_a[lo + j] += (REAL)sa[j];
        }
    }
}

/* acc_ab[j] += Σ_b a[b, j] x[b, j] and acc_a[j] += Σ_b a[b, j] over B rows of w columns (rows `stride`
 * apart), summed in row order in double (s: 2w doubles of scratch) and added once. */
static inline void NAME(add_column_sums)(ptrdiff_t B, ptrdiff_t stride, ptrdiff_t w, const REAL *restrict a,
                                         const REAL *restrict x, double *restrict s, REAL *restrict acc_ax,
                                         REAL *restrict acc_a) {
    double *restrict sax = s, *restrict sa = s + w;
    for (ptrdiff_t j = 0; j < w; j++) sax[j] = sa[j] = 0;
    for (ptrdiff_t b = 0; b < B; b++)
        for (ptrdiff_t j = 0; j < w; j++) {
            sax[j] += (double)a[b * stride + j] * x[b * stride + j];
            sa[j] += a[b * stride + j];
        }
    for (ptrdiff_t j = 0; j < w; j++) {
        acc_ax[j] += (REAL)sax[j];
        acc_a[j] += (REAL)sa[j];
    }
}

/* dh (B, H): in, the gradient reaching h_t. dc (B, H): in, the gradient reaching c_t from step t+1;
 * out, the gradient reaching c_{t-1}. grad_gates (B, 4H), grad_z (B, 4H): out. d_hat (B, H), the
 * gradient reaching LN(c) gain_c + bias_c, from_norm (B, H) and sums (2 * 4H + 2 * H doubles):
 * scratch. acc_gain_hh, acc_bias_hh (4H), acc_gain_c, acc_bias_c (H): this step's share of the
 * normalisation parameters' gradients is added, column sums over the rows taken while the step's
 * slices are in cache (threads split the columns, after the row pass, in which they split the rows). */
void NAME(lnlstm_backward)(ptrdiff_t B, ptrdiff_t H, const REAL *restrict dh, REAL *restrict dc,
                           const REAL *restrict n, const REAL *restrict n_rstd, const REAL *restrict gain_hh,
                           const REAL *restrict act, const REAL *restrict c_prev, const REAL *restrict c_hat,
                           const REAL *restrict c_rstd, const REAL *restrict gain_c, const REAL *restrict squashed,
                           REAL *restrict grad_gates, REAL *restrict grad_z, REAL *restrict d_hat,
                           REAL *restrict from_norm, double *restrict sums, REAL *restrict acc_gain_hh,
                           REAL *restrict acc_bias_hh, REAL *restrict acc_gain_c, REAL *restrict acc_bias_c) {
    const ptrdiff_t G = 4 * H;
#pragma omp parallel num_threads(team_for(B * G))
    {
#pragma omp for schedule(static)
        for (ptrdiff_t b = 0; b < B; b++) {
            const REAL *restrict ab = act + b * G, *restrict i = ab, *restrict f = ab + H, *restrict g = ab + 2 * H,
                                *restrict o = ab + 3 * H;
            const REAL *restrict dhb = dh + b * H, *restrict tb = squashed + b * H, *restrict xb = c_hat + b * H,
                                *restrict cp = c_prev + b * H;
            REAL *restrict dcb = dc + b * H, *restrict da = grad_gates + b * G, *restrict db = d_hat + b * H,
                         *restrict fb = from_norm + b * H;
            for (ptrdiff_t j = 0; j < H; j++) db[j] = dhb[j] * o[j] * ((REAL)1 - tb[j] * tb[j]);
            NAME(layer_norm_grad)(fb, db, xb, c_rstd[b], gain_c, H);
            for (ptrdiff_t j = 0; j < H; j++) {
                REAL d = dcb[j] + fb[j]; /* the whole gradient reaching c_t */
                da[j] = d * g[j] * i[j] * ((REAL)1 - i[j]);
                da[H + j] = d * cp[j] * f[j] * ((REAL)1 - f[j]);
                da[2 * H + j] = d * i[j] * ((REAL)1 - g[j] * g[j]);
                da[3 * H + j] = dhb[j] * tb[j] * o[j] * ((REAL)1 - o[j]);
                dcb[j] = d * f[j];
            }
            REAL *restrict dz = grad_z + b * G;
            const REAL *restrict nb = n + b * G;
            for (int k = 0; k < 4; k++)
                NAME(layer_norm_grad)(dz + k * H, da + k * H, nb + k * H, n_rstd[b * 4 + k], gain_hh + k * H, H);
        } /* (the end of an omp for waits for every thread) */
        ptrdiff_t lo, hi;
        share(G, &lo, &hi);
        NAME(add_column_sums)(B, G, hi - lo, grad_gates + lo, n + lo, sums + 2 * lo, acc_gain_hh + lo,
                              acc_bias_hh + lo);
        share(H, &lo, &hi);
        NAME(add_column_sums)(B, H, hi - lo, d_hat + lo, c_hat + lo, sums + 2 * G + 2 * lo, acc_gain_c + lo,
                              acc_bias_c + lo);
    }
}

/* Layer normalisation of `rows` H-wide rows, each on its own; the gain and bias have `blocks` x H
 * values, row r taking block r mod blocks (the LN-LSTM's input projection: B·T rows of 4 gate
 * blocks, blocks = 4). Forward saves x̂ and 1 / deviation; backward gives d loss / d x. */
void NAME(layer_norm_rows_forward)(ptrdiff_t rows, ptrdiff_t H, ptrdiff_t blocks, const REAL *restrict x,
                                   const REAL *restrict gain, const REAL *restrict bias, REAL *restrict y,
                                   REAL *restrict xhat, REAL *restrict rstd) {
#pragma omp parallel for num_threads(team_for(rows * H)) schedule(static)
    for (ptrdiff_t row = 0; row < rows; row++) {
        const REAL *restrict xr = x + row * H;
        const REAL *restrict gr = gain + (row % blocks) * H, *restrict br = bias + (row % blocks) * H;
        REAL *restrict hr = xhat + row * H, *restrict yr = y + row * H;
        REAL m, r;
        NAME(moments)(xr, H, &m, &r);
        rstd[row] = r;
        for (ptrdiff_t j = 0; j < H; j++) {
            hr[j] = (xr[j] - m) * r;
            yr[j] = hr[j] * gr[j] + br[j];
        }
    }
}

void NAME(layer_norm_rows_backward)(ptrdiff_t rows, ptrdiff_t H, ptrdiff_t blocks, const REAL *restrict grad_y,
                                    const REAL *restrict xhat, const REAL *restrict rstd,
                                    const REAL *restrict gain, REAL *restrict grad_x) {
#pragma omp parallel for num_threads(team_for(rows * H)) schedule(static)
    for (ptrdiff_t row = 0; row < rows; row++)
        NAME(layer_norm_grad)(grad_x + row * H, grad_y + row * H, xhat + row * H, rstd[row],
                              gain + (row % blocks) * H, H);
}
