/* The element-wise part of one training step of the batch-normalised LSTM (Cooijmans et al. 2016),
 * forward and backward. Batch normalisation takes its statistics over the B rows of each column, so
 * every pass here is a column reduction (loop over rows outside, columns inside, which the
 * compiler vectorises) followed by a pass that uses it. The recurrent multiply stays in PyTorch
 * (rnnkit/cells/batchnorm_sequence.py); so does the input projection's normalisation, which
 * depends on no earlier step and is done for all steps at once.
 *
 * Forward (z = h_prev W_hh^T, from PyTorch; shifted = BN(x W_ih) gain_ih + b_ih + b_hh):
 *   n    = BN(z) per column                 (n, the batch mean, variance and 1 / deviation saved)
 *   a    = shifted + n * gain_hh
 *   act  = sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)
 *   c    = f c_prev + i g
 *   th   = tanh(BN(c) * gain_c + bias_c)    (BN(c) and its statistics saved)
 *   h    = o th
 * The batch means and (biased) variances go back to PyTorch for the running averages.
 * Backward: the same gradients as lnlstm.c, with each normalisation's backward pass taken over
 * the batch: dx = r (dx̂ - mean_b(dx̂) - x̂ mean_b(dx̂ x̂)) per column.
 */

/* mean, biased variance and 1 / sqrt(variance + eps) of each of W columns over B rows;
 * sums (2W doubles) is scratch. */
static inline void NAME(column_moments)(ptrdiff_t B, ptrdiff_t W, const REAL *restrict x, double *restrict sums,
                                        REAL *restrict mean, REAL *restrict var, REAL *restrict rstd) {
    double *restrict s = sums, *restrict q = sums + W;
    for (ptrdiff_t j = 0; j < W; j++) s[j] = q[j] = 0;
    for (ptrdiff_t b = 0; b < B; b++)
        for (ptrdiff_t j = 0; j < W; j++) s[j] += x[b * W + j];
    for (ptrdiff_t j = 0; j < W; j++) s[j] /= (double)B;
    for (ptrdiff_t b = 0; b < B; b++)
        for (ptrdiff_t j = 0; j < W; j++) {
            double d = x[b * W + j] - s[j];
            q[j] += d * d;
        }
    for (ptrdiff_t j = 0; j < W; j++) {
        double v = q[j] / (double)B;
        mean[j] = (REAL)s[j];
        var[j] = (REAL)v;
        rstd[j] = (REAL)(1.0 / sqrt(v + NORM_EPS));
    }
}

/* sums: 2 * 4H doubles of scratch. */
void NAME(bnlstm_forward)(ptrdiff_t B, ptrdiff_t H, const REAL *restrict z, const REAL *restrict shifted,
                          const REAL *restrict gain_hh, const REAL *restrict c_prev, const REAL *restrict gain_c,
                          const REAL *restrict bias_c, double *restrict sums, REAL *restrict n,
                          REAL *restrict z_mean, REAL *restrict z_var, REAL *restrict z_rstd, REAL *restrict act,
                          REAL *restrict c, REAL *restrict c_hat, REAL *restrict c_mean, REAL *restrict c_var,
                          REAL *restrict c_rstd, REAL *restrict squashed, REAL *restrict h) {
    const ptrdiff_t G = 4 * H;
    NAME(column_moments)(B, G, z, sums, z_mean, z_var, z_rstd);
    for (ptrdiff_t b = 0; b < B; b++) {
        const REAL *restrict zb = z + b * G, *restrict sb = shifted + b * G;
        REAL *restrict ab = act + b * G, *restrict nb = n + b * G;
        for (ptrdiff_t j = 0; j < G; j++) {
            nb[j] = (zb[j] - z_mean[j]) * z_rstd[j];
            ab[j] = sb[j] + nb[j] * gain_hh[j]; /* the pre-activation, squashed below */
        }
        for (ptrdiff_t j = 0; j < 2 * H; j++) ab[j] = NAME(sigm)(ab[j]);
        for (ptrdiff_t j = 2 * H; j < 3 * H; j++) ab[j] = NAME(tanh_)(ab[j]);
        for (ptrdiff_t j = 3 * H; j < 4 * H; j++) ab[j] = NAME(sigm)(ab[j]);
        const REAL *restrict i = ab, *restrict f = ab + H, *restrict g = ab + 2 * H;
        const REAL *restrict cp = c_prev + b * H;
        REAL *restrict cb = c + b * H;
        for (ptrdiff_t j = 0; j < H; j++) cb[j] = f[j] * cp[j] + i[j] * g[j];
    }
    NAME(column_moments)(B, H, c, sums, c_mean, c_var, c_rstd);
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

/* dh (B, H): in, the gradient reaching h_t. dc (B, H): in, the gradient reaching c_t from step t+1;
 * out, the gradient reaching c_{t-1}. grad_gates (B, 4H), grad_z (B, 4H): out. d_hat (B, H) and
 * sums (2 * 4H + 2 * H doubles): scratch. acc_gain_hh (4H), acc_gain_c, acc_bias_c (H): this step's
 * share is added. */
void NAME(bnlstm_backward)(ptrdiff_t B, ptrdiff_t H, const REAL *restrict dh, REAL *restrict dc,
                           const REAL *restrict n, const REAL *restrict z_rstd, const REAL *restrict gain_hh,
                           const REAL *restrict act, const REAL *restrict c_prev, const REAL *restrict c_hat,
                           const REAL *restrict c_rstd, const REAL *restrict gain_c,
                           const REAL *restrict squashed, REAL *restrict grad_gates, REAL *restrict grad_z,
                           REAL *restrict d_hat, double *restrict sums, REAL *restrict acc_gain_hh,
                           REAL *restrict acc_gain_c, REAL *restrict acc_bias_c) {
    const ptrdiff_t G = 4 * H;
    double *restrict c1 = sums, *restrict c2 = sums + H, *restrict z1 = sums + 2 * H, *restrict z2 = sums + 2 * H + G;
    for (ptrdiff_t j = 0; j < 2 * H + 2 * G; j++) sums[j] = 0;
    /* the gradient reaching BN(c) gain_c + bias_c, and the column sums its backward pass needs */
    for (ptrdiff_t b = 0; b < B; b++) {
        const REAL *restrict o = act + b * G + 3 * H, *restrict tb = squashed + b * H, *restrict xb = c_hat + b * H;
        const REAL *restrict dhb = dh + b * H;
        REAL *restrict db = d_hat + b * H;
        for (ptrdiff_t j = 0; j < H; j++) {
            db[j] = dhb[j] * o[j] * ((REAL)1 - tb[j] * tb[j]);
            acc_gain_c[j] += db[j] * xb[j];
            acc_bias_c[j] += db[j];
            double d = (double)db[j] * gain_c[j];
            c1[j] += d;
            c2[j] += d * xb[j];
        }
    }
    for (ptrdiff_t j = 0; j < H; j++) { c1[j] /= (double)B; c2[j] /= (double)B; }
    for (ptrdiff_t b = 0; b < B; b++) {
        const REAL *restrict ab = act + b * G, *restrict i = ab, *restrict f = ab + H, *restrict g = ab + 2 * H,
                            *restrict o = ab + 3 * H;
        const REAL *restrict dhb = dh + b * H, *restrict tb = squashed + b * H, *restrict xb = c_hat + b * H,
                            *restrict cp = c_prev + b * H, *restrict db = d_hat + b * H, *restrict nb = n + b * G;
        REAL *restrict dcb = dc + b * H, *restrict da = grad_gates + b * G;
        for (ptrdiff_t j = 0; j < H; j++) {
            REAL from_bn = (REAL)(c_rstd[j] * (db[j] * gain_c[j] - c1[j] - xb[j] * c2[j]));
            REAL d = dcb[j] + from_bn; /* the whole gradient reaching c_t */
            da[j] = d * g[j] * i[j] * ((REAL)1 - i[j]);
            da[H + j] = d * cp[j] * f[j] * ((REAL)1 - f[j]);
            da[2 * H + j] = d * i[j] * ((REAL)1 - g[j] * g[j]);
            da[3 * H + j] = dhb[j] * tb[j] * o[j] * ((REAL)1 - o[j]);
            dcb[j] = d * f[j];
        }
        for (ptrdiff_t j = 0; j < G; j++) {
            acc_gain_hh[j] += da[j] * nb[j];
            double d = (double)da[j] * gain_hh[j];
            z1[j] += d;
            z2[j] += d * nb[j];
        }
    }
    for (ptrdiff_t j = 0; j < G; j++) { z1[j] /= (double)B; z2[j] /= (double)B; }
    for (ptrdiff_t b = 0; b < B; b++) {
        const REAL *restrict da = grad_gates + b * G, *restrict nb = n + b * G;
        REAL *restrict dz = grad_z + b * G;
        for (ptrdiff_t j = 0; j < G; j++)
            dz[j] = (REAL)(z_rstd[j] * (da[j] * gain_hh[j] - z1[j] - nb[j] * z2[j]));
    }
}

/* The input projection's batch normalisation for all T steps of a chunk, each step over its own B
 * rows: y = BN(x) gain + bias (bias: b_ih + b_hh), x̂ and the statistics saved. sums: 2W doubles. */
void NAME(batch_norm_steps_forward)(ptrdiff_t T, ptrdiff_t B, ptrdiff_t W, const REAL *restrict x,
                                    const REAL *restrict gain, const REAL *restrict bias, double *restrict sums,
                                    REAL *restrict y, REAL *restrict xhat, REAL *restrict mean, REAL *restrict var,
                                    REAL *restrict rstd) {
    for (ptrdiff_t t = 0; t < T; t++) {
        const REAL *restrict xt = x + t * B * W;
        REAL *restrict m = mean + t * W, *restrict r = rstd + t * W;
        NAME(column_moments)(B, W, xt, sums, m, var + t * W, r);
        for (ptrdiff_t b = 0; b < B; b++) {
            const REAL *restrict xb = xt + b * W;
            REAL *restrict hb = xhat + (t * B + b) * W, *restrict yb = y + (t * B + b) * W;
            for (ptrdiff_t j = 0; j < W; j++) {
                hb[j] = (xb[j] - m[j]) * r[j];
                yb[j] = hb[j] * gain[j] + bias[j];
            }
        }
    }
}

/* Its backward pass: dx from dy; the gain's and the bias's gradients added to acc_gain, acc_bias.
 * sums: 2W doubles. */
void NAME(batch_norm_steps_backward)(ptrdiff_t T, ptrdiff_t B, ptrdiff_t W, const REAL *restrict dy,
                                     const REAL *restrict xhat, const REAL *restrict rstd, const REAL *restrict gain,
                                     double *restrict sums, REAL *restrict dx, REAL *restrict acc_gain,
                                     REAL *restrict acc_bias) {
    double *restrict s1 = sums, *restrict s2 = sums + W;
    for (ptrdiff_t t = 0; t < T; t++) {
        for (ptrdiff_t j = 0; j < W; j++) s1[j] = s2[j] = 0;
        for (ptrdiff_t b = 0; b < B; b++) {
            const REAL *restrict db = dy + (t * B + b) * W, *restrict hb = xhat + (t * B + b) * W;
            for (ptrdiff_t j = 0; j < W; j++) {
                acc_gain[j] += db[j] * hb[j];
                acc_bias[j] += db[j];
                double d = (double)db[j] * gain[j];
                s1[j] += d;
                s2[j] += d * hb[j];
            }
        }
        for (ptrdiff_t j = 0; j < W; j++) { s1[j] /= (double)B; s2[j] /= (double)B; }
        const REAL *restrict r = rstd + t * W;
        for (ptrdiff_t b = 0; b < B; b++) {
            const REAL *restrict db = dy + (t * B + b) * W, *restrict hb = xhat + (t * B + b) * W;
            REAL *restrict out = dx + (t * B + b) * W;
            for (ptrdiff_t j = 0; j < W; j++) out[j] = (REAL)(r[j] * (db[j] * gain[j] - s1[j] - hb[j] * s2[j]));
        }
    }
}
