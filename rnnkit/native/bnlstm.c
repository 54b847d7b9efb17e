/* The element-wise part of one training step of the batch-normalised LSTM (Cooijmans et al. 2016),
 * forward and backward, both batch normalisations of the gates' inputs included. Batch
 * normalisation takes its statistics over the B rows of each column, so every pass here is a
 * column reduction (loop over rows outside, columns inside, which the compiler vectorises)
 * followed by a pass that uses it. The multiplies stay in PyTorch (rnnkit/cells/batchnorm_sequence.py).
 *
 * Forward (x = x_t W_ih^T for all steps at once and z = h_prev W_hh^T, both from PyTorch):
 *   x̂    = BN(x) per column                (x̂, the batch mean, variance and 1 / deviation saved)
 *   n    = BN(z) per column                (the same)
 *   a    = x̂ gain_ih + n gain_hh + bias    (bias = b_ih + b_hh)
 *   act  = sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)
 *   c    = f c_prev + i g
 *   th   = tanh(BN(c) * gain_c + bias_c)    (BN(c) and its statistics saved)
 *   h    = o th
 * The batch means and (biased) variances go back to PyTorch for the running averages.
 * Backward: the same gradients as lnlstm.c, with each normalisation's backward pass taken over
 * the batch: dx = r (dx̂ - mean_b(dx̂) - x̂ mean_b(dx̂ x̂)) per column. Normalising x here, step by
 * step while its (B, 4H) slice is in cache, rather than in a pass of its own over the whole
 * (T, B, 4H) chunk each way, took 7% off a 2 x 256 training step.
 *
 * Threads split the rows for the row passes and the columns (in wide contiguous pieces, `share`)
 * for the column reductions, with a barrier between; each column is summed in row order whatever
 * the thread count, so the results do not depend on it. (Slicing everything by columns instead,
 * 32 units at a time, was 1.7x slower on one thread at H = 512: short strided rows.)
 */

/* mean, biased variance and 1 / sqrt(variance + eps) of each of w columns over B rows (x: the first
 * column, rows `stride` apart), in one pass: sums of x and x^2 in double, variance = E[x^2] - mean^2
 * (clamped at 0). Double keeps the cancellation harmless for what reaches these kernels (its error
 * is about 1e-16 mean^2, far below eps unless |mean| > 1e5 std); one pass reads the (B, 4H) slice
 * once instead of twice. s and q (w doubles each) are scratch. */
static inline void NAME(column_moments)(ptrdiff_t B, ptrdiff_t stride, ptrdiff_t w, const REAL *restrict x,
                                        double *restrict s, double *restrict q, REAL *restrict mean,
                                        REAL *restrict var, REAL *restrict rstd) {
    for (ptrdiff_t j = 0; j < w; j++) s[j] = q[j] = 0;
    for (ptrdiff_t b = 0; b < B; b++)
        for (ptrdiff_t j = 0; j < w; j++) {
            const double v = x[b * stride + j];
            s[j] += v;
            q[j] += v * v;
        }
    for (ptrdiff_t j = 0; j < w; j++) {
        const double m = s[j] / (double)B, d = q[j] / (double)B - m * m, v = d > 0 ? d : 0;
        mean[j] = (REAL)m;
        var[j] = (REAL)v;
        rstd[j] = (REAL)(1.0 / sqrt(v + NORM_EPS));
    }
}

/* Column sums over B rows of w columns (rows `stride` apart), in row order, in double: Σ a and Σ a x̂,
 * added to a normalisation's bias and gain gradients acc_a (if not NULL) and acc_ax; mean_a and
 * mean_ax (w doubles each) are left holding them divided by B. For y = BN(x) gain that is what its
 * backward pass needs: mean_b(dy gain) = gain mean_a and mean_b(dy gain x̂) = gain mean_ax. */
static inline void NAME(gradient_sums)(ptrdiff_t B, ptrdiff_t stride, ptrdiff_t w, const REAL *restrict a,
                                       const REAL *restrict xhat, double *restrict mean_a, double *restrict mean_ax,
                                       REAL *restrict acc_a, REAL *restrict acc_ax) {
    for (ptrdiff_t j = 0; j < w; j++) mean_a[j] = mean_ax[j] = 0;
    for (ptrdiff_t b = 0; b < B; b++)
        for (ptrdiff_t j = 0; j < w; j++) {
            mean_a[j] += a[b * stride + j];
            mean_ax[j] += (double)a[b * stride + j] * xhat[b * stride + j];
        }
    for (ptrdiff_t j = 0; j < w; j++) {
        if (acc_a) acc_a[j] += (REAL)mean_a[j];
        acc_ax[j] += (REAL)mean_ax[j];
        mean_a[j] /= (double)B;
        mean_ax[j] /= (double)B;
    }
}

/* The backward passes of both normalisations feeding the gates, a = x̂ gain_ih + n gain_hh + ...,
 * over B rows of w of the 4H columns (rows `stride` apart), given da: the column sums Σ da (the bias's
 * gradient, and the mean both passes need), Σ da x̂ and Σ da n (the gains' gradients), added to
 * acc_*, then dx = r_x gain_ih (da - mean(da) - x̂ mean(da x̂)) and dz likewise with n. Two passes
 * over the slice in all, reading da once in each for both. m (3w doubles): scratch. */
static inline void NAME(gates_input_grads)(ptrdiff_t B, ptrdiff_t stride, ptrdiff_t w, const REAL *restrict da,
                                           const REAL *restrict x_hat, const REAL *restrict n,
                                           const REAL *restrict gain_ih, const REAL *restrict gain_hh,
                                           const REAL *restrict x_rstd, const REAL *restrict z_rstd,
                                           double *restrict m, REAL *restrict acc_bias, REAL *restrict acc_gain_ih,
                                           REAL *restrict acc_gain_hh, REAL *restrict dx, REAL *restrict dz) {
    double *restrict ma = m, *restrict mx = m + w, *restrict mz = m + 2 * w;
    for (ptrdiff_t j = 0; j < w; j++) ma[j] = mx[j] = mz[j] = 0;
    for (ptrdiff_t b = 0; b < B; b++)
        for (ptrdiff_t j = 0; j < w; j++) {
            const double d = da[b * stride + j];
            ma[j] += d;
            mx[j] += d * x_hat[b * stride + j];
            mz[j] += d * n[b * stride + j];
        }
    for (ptrdiff_t j = 0; j < w; j++) {
        acc_bias[j] += (REAL)ma[j];
        acc_gain_ih[j] += (REAL)mx[j];
        acc_gain_hh[j] += (REAL)mz[j];
        ma[j] /= (double)B;
        mx[j] /= (double)B;
        mz[j] /= (double)B;
    }
    for (ptrdiff_t b = 0; b < B; b++)
        for (ptrdiff_t j = 0; j < w; j++) {
            const double d = (double)da[b * stride + j] - ma[j];
            dx[b * stride + j] = (REAL)((double)x_rstd[j] * gain_ih[j] * (d - x_hat[b * stride + j] * mx[j]));
            dz[b * stride + j] = (REAL)((double)z_rstd[j] * gain_hh[j] * (d - n[b * stride + j] * mz[j]));
        }
}

/* sums: 4 * 4H doubles of scratch. */
void NAME(bnlstm_forward)(ptrdiff_t B, ptrdiff_t H, const REAL *restrict x, const REAL *restrict z,
                          const REAL *restrict gain_ih, const REAL *restrict gain_hh, const REAL *restrict bias,
                          const REAL *restrict c_prev, const REAL *restrict gain_c, const REAL *restrict bias_c,
                          double *restrict sums, REAL *restrict x_hat, REAL *restrict x_mean, REAL *restrict x_var,
                          REAL *restrict x_rstd, REAL *restrict n, REAL *restrict z_mean, REAL *restrict z_var,
                          REAL *restrict z_rstd, REAL *restrict act, REAL *restrict c, REAL *restrict c_hat,
                          REAL *restrict c_mean, REAL *restrict c_var, REAL *restrict c_rstd,
                          REAL *restrict squashed, REAL *restrict h) {
    const ptrdiff_t G = 4 * H;
#pragma omp parallel num_threads(team_for(B * G))
    {
        ptrdiff_t lo, hi;
        share(G, &lo, &hi);
        NAME(column_moments)(B, G, hi - lo, x + lo, sums + lo, sums + G + lo, x_mean + lo, x_var + lo, x_rstd + lo);
        NAME(column_moments)(B, G, hi - lo, z + lo, sums + 2 * G + lo, sums + 3 * G + lo, z_mean + lo, z_var + lo,
                             z_rstd + lo);
#pragma omp barrier
#pragma omp for schedule(static)
        for (ptrdiff_t b = 0; b < B; b++) {
            const REAL *restrict xb = x + b * G, *restrict zb = z + b * G;
            REAL *restrict ab = act + b * G, *restrict hb = x_hat + b * G, *restrict nb = n + b * G;
            for (ptrdiff_t j = 0; j < G; j++) {
                hb[j] = (xb[j] - x_mean[j]) * x_rstd[j];
                nb[j] = (zb[j] - z_mean[j]) * z_rstd[j];
                ab[j] = hb[j] * gain_ih[j] + nb[j] * gain_hh[j] + bias[j]; /* the pre-activation, squashed below */
            }
            for (ptrdiff_t j = 0; j < 2 * H; j++) ab[j] = NAME(sigm)(ab[j]);
            for (ptrdiff_t j = 2 * H; j < 3 * H; j++) ab[j] = NAME(tanh_)(ab[j]);
            for (ptrdiff_t j = 3 * H; j < 4 * H; j++) ab[j] = NAME(sigm)(ab[j]);
            const REAL *restrict i = ab, *restrict f = ab + H, *restrict g = ab + 2 * H;
            const REAL *restrict cp = c_prev + b * H;
            REAL *restrict cb = c + b * H;
            for (ptrdiff_t j = 0; j < H; j++) cb[j] = f[j] * cp[j] + i[j] * g[j];
        } /* (the end of an omp for waits for every thread) */
        share(H, &lo, &hi);
        NAME(column_moments)(B, H, hi - lo, c + lo, sums + lo, sums + H + lo, c_mean + lo, c_var + lo, c_rstd + lo);
#pragma omp barrier
#pragma omp for schedule(static)
        for (ptrdiff_t b = 0; b < B; b++) {
            const REAL *restrict cb = c + b * H, *restrict o = act + b * G + 3 * H;
            REAL *restrict xb = c_hat + b * H, *restrict tb = squashed + b * H, *restrict hb = h + b * H;
            for (ptrdiff_t j = 0; j < H; j++) {
                xb[j] = (cb[j] - c_mean[j]) * c_rstd[j];
                tb[j] = NAME(tanh_)(xb[j] * gain_c[j] + bias_c[j]);
                hb[j] = o[j] * tb[j];
            }
        }
    }
}

/* dh (B, H): in, the gradient reaching h_t. dc (B, H): in, the gradient reaching c_t from step t+1;
 * out, the gradient reaching c_{t-1}. grad_x, grad_z (B, 4H): out, the gradients reaching x and z.
 * grad_gates (B, 4H), d_hat (B, H) and sums (2 * H + 3 * 4H doubles): scratch. acc_gain_ih, acc_bias,
 * acc_gain_hh (4H), acc_gain_c, acc_bias_c (H): this step's share is added. */
void NAME(bnlstm_backward)(ptrdiff_t B, ptrdiff_t H, const REAL *restrict dh, REAL *restrict dc,
                           const REAL *restrict x_hat, const REAL *restrict x_rstd, const REAL *restrict gain_ih,
                           const REAL *restrict n, const REAL *restrict z_rstd, const REAL *restrict gain_hh,
                           const REAL *restrict act, const REAL *restrict c_prev, const REAL *restrict c_hat,
                           const REAL *restrict c_rstd, const REAL *restrict gain_c,
                           const REAL *restrict squashed, REAL *restrict grad_x, REAL *restrict grad_z,
                           REAL *restrict grad_gates, REAL *restrict d_hat, double *restrict sums,
                           REAL *restrict acc_gain_ih, REAL *restrict acc_bias, REAL *restrict acc_gain_hh,
                           REAL *restrict acc_gain_c, REAL *restrict acc_bias_c) {
    const ptrdiff_t G = 4 * H;
    double *restrict c1 = sums, *restrict c2 = sums + H, *restrict m = sums + 2 * H;
#pragma omp parallel num_threads(team_for(B * G))
    {
        /* the gradient reaching BN(c) gain_c + bias_c, and what its backward pass needs */
#pragma omp for schedule(static)
        for (ptrdiff_t b = 0; b < B; b++) {
            const REAL *restrict o = act + b * G + 3 * H, *restrict tb = squashed + b * H, *restrict dhb = dh + b * H;
            REAL *restrict db = d_hat + b * H;
            for (ptrdiff_t j = 0; j < H; j++) db[j] = dhb[j] * o[j] * ((REAL)1 - tb[j] * tb[j]);
        }
        ptrdiff_t lo, hi;
        share(H, &lo, &hi);
        NAME(gradient_sums)(B, H, hi - lo, d_hat + lo, c_hat + lo, c1 + lo, c2 + lo, acc_bias_c + lo, acc_gain_c + lo);
#pragma omp barrier
#pragma omp for schedule(static)
        for (ptrdiff_t b = 0; b < B; b++) {
            const REAL *restrict ab = act + b * G, *restrict i = ab, *restrict f = ab + H, *restrict g = ab + 2 * H,
                                *restrict o = ab + 3 * H;
            const REAL *restrict dhb = dh + b * H, *restrict tb = squashed + b * H, *restrict xb = c_hat + b * H,
                                *restrict cp = c_prev + b * H, *restrict db = d_hat + b * H;
            REAL *restrict dcb = dc + b * H, *restrict da = grad_gates + b * G;
            for (ptrdiff_t j = 0; j < H; j++) {
                REAL from_bn = (REAL)(c_rstd[j] * gain_c[j] * (db[j] - c1[j] - xb[j] * c2[j]));
                REAL d = dcb[j] + from_bn; /* the whole gradient reaching c_t */
                da[j] = d * g[j] * i[j] * ((REAL)1 - i[j]);
                da[H + j] = d * cp[j] * f[j] * ((REAL)1 - f[j]);
                da[2 * H + j] = d * i[j] * ((REAL)1 - g[j] * g[j]);
                da[3 * H + j] = dhb[j] * tb[j] * o[j] * ((REAL)1 - o[j]);
                dcb[j] = d * f[j];
            }
        }
        /* both normalisations of the gates' inputs, in this thread's columns of the step's (B, 4H) */
        share(G, &lo, &hi);
        NAME(gates_input_grads)(B, G, hi - lo, grad_gates + lo, x_hat + lo, n + lo, gain_ih + lo, gain_hh + lo,
                                x_rstd + lo, z_rstd + lo, m + 3 * lo, acc_bias + lo, acc_gain_ih + lo,
                                acc_gain_hh + lo, grad_x + lo, grad_z + lo);
    }
}
