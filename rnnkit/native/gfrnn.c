/* The element-wise part of one layer's step in a gated-feedback LSTM stack (Chung et al. 2015),
 * forward and backward, in one pass over each row. The multiplies stay in PyTorch
 * (rnnkit/cells/feedback_sequence.py, whose header has the layout); as PyTorch operations this part
 * was about thirty passes over (B, H)-sized tensors per layer and step.
 *
 * Layer j of L, B rows, H units. a (B, 4H + L): the layer's input projection (gates i, f, c, o, then
 * the L reset-gate logits). rec: L addresses, for each source layer s a (B, R) array holding
 * h^s_{t-1} W_rec^s^T: [U^s h^s (4H) | U_c^{s->k} h^s for each k != s (H each) | the reset
 * logits' share for every target k (L each)], R = 4H + (L-1)H + L·L. bias: b_hh of layer j (4H).
 *
 *   g_s   = σ(a_r[s] + Σ_q rec_q[reset_at + j L + s])         g^{s->j}, s = 0..L-1
 *   own   = rec_j[0:4H] + bias
 *   i, f, o = σ(a + own) on their blocks
 *   c~    = tanh(a_c + g_j own_c + Σ_{s != j} g_s rec_s[feedback slot of j])
 *   c     = f c_prev + i c~,  h = o tanh(c)
 */
static inline ptrdiff_t NAME(feedback_slot)(ptrdiff_t H, ptrdiff_t source, ptrdiff_t target) {
    return 4 * H + (target - (target > source)) * H; /* target's place among the layers other than source */
}

/* act (B, 4H): σ(i), σ(f), tanh(c~), σ(o); resets (B, L): g; c, tanh_c, h (B, H): out. */
void NAME(gfrnn_forward)(ptrdiff_t B, ptrdiff_t H, ptrdiff_t L, ptrdiff_t j,
                         const REAL *restrict a, const REAL *const *rec, const REAL *restrict bias,
                         const REAL *restrict c_prev, REAL *restrict act, REAL *restrict resets,
                         REAL *restrict c, REAL *restrict tanh_c, REAL *restrict h) {
    const ptrdiff_t A = 4 * H + L, R = 4 * H + (L - 1) * H + L * L, reset_at = 4 * H + (L - 1) * H;
#pragma omp parallel for num_threads(team_for(B * 4 * H * L)) schedule(static)
    for (ptrdiff_t b = 0; b < B; b++) {
        const REAL *restrict ab = a + b * A, *restrict own = rec[j] + b * R;
        REAL *restrict gb = resets + b * L, *restrict xb = act + b * 4 * H;
        for (ptrdiff_t s = 0; s < L; s++) {
            REAL logit = ab[4 * H + s];
            for (ptrdiff_t q = 0; q < L; q++) logit += rec[q][b * R + reset_at + j * L + s];
            gb[s] = NAME(sigm)(logit);
        }
        for (ptrdiff_t k = 0; k < 2 * H; k++) xb[k] = NAME(sigm)(ab[k] + own[k] + bias[k]);
        for (ptrdiff_t k = 3 * H; k < 4 * H; k++) xb[k] = NAME(sigm)(ab[k] + own[k] + bias[k]);
        REAL *restrict content = xb + 2 * H;
        const REAL gj = gb[j];
        for (ptrdiff_t k = 0; k < H; k++) content[k] = ab[2 * H + k] + gj * (own[2 * H + k] + bias[2 * H + k]);
        for (ptrdiff_t s = 0; s < L; s++) {
            if (s == j) continue;
            const REAL gs = gb[s], *restrict from = rec[s] + b * R + NAME(feedback_slot)(H, s, j);
            for (ptrdiff_t k = 0; k < H; k++) content[k] += gs * from[k];
        }
        for (ptrdiff_t k = 0; k < H; k++) content[k] = NAME(tanh_)(content[k]);
        const REAL *restrict cp = c_prev + b * H, *restrict i = xb, *restrict f = xb + H, *restrict o = xb + 3 * H;
        REAL *restrict cb = c + b * H, *restrict tb = tanh_c + b * H, *restrict hb = h + b * H;
        for (ptrdiff_t k = 0; k < H; k++) cb[k] = f[k] * cp[k] + i[k] * content[k];
        for (ptrdiff_t k = 0; k < H; k++) tb[k] = NAME(tanh_)(cb[k]);
        for (ptrdiff_t k = 0; k < H; k++) hb[k] = o[k] * tb[k];
    }
}

/* dh (B, H): the gradient reaching h_t through the next step; out (or NULL): the output's gradient;
 * above (or NULL): through the layer above's input, times mask (or NULL: no dropout). dc (B, H): in,
 * from step t+1; out, to c_{t-1}. d_a (B, 4H + L): out. d_rec: the gradient of rec, one (B, R) block
 * per source, source s at d_rec + s * d_rec_stride. Of every source's block, this layer's columns are
 * written: its own four blocks (the candidate's gated by g_j), its feedback slot in every other
 * source, its L reset columns in all. */
void NAME(gfrnn_backward)(ptrdiff_t B, ptrdiff_t H, ptrdiff_t L, ptrdiff_t j, ptrdiff_t d_rec_stride,
                          const REAL *restrict dh, const REAL *restrict out, const REAL *restrict above,
                          const REAL *restrict mask, REAL *restrict dc, const REAL *restrict act,
                          const REAL *restrict resets, const REAL *restrict c_prev, const REAL *restrict tanh_c,
                          const REAL *const *rec, const REAL *restrict bias, REAL *restrict d_a,
                          REAL *restrict d_rec) {
    const ptrdiff_t A = 4 * H + L, R = 4 * H + (L - 1) * H + L * L, reset_at = 4 * H + (L - 1) * H;
#pragma omp parallel for num_threads(team_for(B * 4 * H * L)) schedule(static)
    for (ptrdiff_t b = 0; b < B; b++) {
        const REAL *restrict xb = act + b * 4 * H, *restrict gb = resets + b * L, *restrict tb = tanh_c + b * H,
                   *restrict cp = c_prev + b * H, *restrict own = rec[j] + b * R;
        const REAL *restrict i = xb, *restrict f = xb + H, *restrict content = xb + 2 * H, *restrict o = xb + 3 * H;
        REAL *restrict db = d_a + b * A, *restrict dcb = dc + b * H;
        REAL *restrict d_own = d_rec + j * d_rec_stride + b * R;
        REAL d_gate[64]; /* d loss / d g_s: L is at most 64 (checked where the stack is built) */
        /* the gradient reaching h_t, gathered first into d_o's place, which the pass below overwrites
         * after reading (separate loops, without branches, so that the compiler vectorises them) */
        REAL *restrict d_h = db + 3 * H;
        for (ptrdiff_t k = 0; k < H; k++) d_h[k] = dh[b * H + k];
        if (out)
            for (ptrdiff_t k = 0; k < H; k++) d_h[k] += out[b * H + k];
        if (above && mask)
            for (ptrdiff_t k = 0; k < H; k++) d_h[k] += above[b * H + k] * mask[b * H + k];
        else if (above)
            for (ptrdiff_t k = 0; k < H; k++) d_h[k] += above[b * H + k];
        const REAL gj = gb[j], *restrict own_c = own + 2 * H, *restrict bias_c = bias + 2 * H;
        REAL own_sum = 0;
        for (ptrdiff_t k = 0; k < H; k++) {
            const REAL d_c = dcb[k] + d_h[k] * o[k] * (1 - tb[k] * tb[k]);
            const REAL d_content = d_c * i[k] * (1 - content[k] * content[k]);
            db[k] = d_c * content[k] * i[k] * (1 - i[k]);
            db[H + k] = d_c * cp[k] * f[k] * (1 - f[k]);
            db[2 * H + k] = d_content;
            d_h[k] = d_h[k] * tb[k] * o[k] * (1 - o[k]); /* now d_o */
            dcb[k] = d_c * f[k];
            own_sum += d_content * (own_c[k] + bias_c[k]);
        }
        d_gate[j] = own_sum;
        for (ptrdiff_t k = 0; k < 2 * H; k++) d_own[k] = db[k];
        for (ptrdiff_t k = 0; k < H; k++) d_own[2 * H + k] = db[2 * H + k] * gj;
        for (ptrdiff_t k = 0; k < H; k++) d_own[3 * H + k] = d_h[k];
        for (ptrdiff_t s = 0; s < L; s++) {
            if (s == j) continue;
            const ptrdiff_t slot = NAME(feedback_slot)(H, s, j);
            const REAL gs = gb[s], *restrict from = rec[s] + b * R + slot;
            REAL *restrict to = d_rec + s * d_rec_stride + b * R + slot;
            REAL sum = 0;
            for (ptrdiff_t k = 0; k < H; k++) {
                sum += db[2 * H + k] * from[k];
                to[k] = db[2 * H + k] * gs;
            }
            d_gate[s] = sum;
        }
        for (ptrdiff_t s = 0; s < L; s++) {
            const REAL d_logit = d_gate[s] * gb[s] * (1 - gb[s]);
            db[4 * H + s] = d_logit;
            for (ptrdiff_t q = 0; q < L; q++) d_rec[q * d_rec_stride + b * R + reset_at + j * L + s] = d_logit;
        }
    }
}
