/* One LSTM layer over a batch of sequences of different lengths (torch.nn.LSTM, batch_first,
 * one layer; stack two for MovieCLIP's shot model).  For each step t, with h, c the state:
 *   z = W_ih·x_t + b_ih + W_hh·h_{t-1} + b_hh       (4H: the gates' inputs, in torch's order)
 *   i = σ(z_i)  f = σ(z_f)  g = tanh(z_g)  o = σ(z_o)
 *   c_t = f·c_{t-1} + i·g                          h_t = o·tanh(c_t) = y_t
 * The input half W_ih·x_t of every step is one GEMM over the whole batch and all steps; only
 * the recurrent half waits for the previous step.  A sequence of length L stops at t = L: its
 * later outputs are 0 and its final state is the one after step L-1 (pack_padded_sequence).
 *
 * Backward is backpropagation through time: walk t from the end, carrying dh and dc, the
 * gradients reaching h_{t-1} and c_{t-1} from the steps after them:
 *   dh_t  = dy_t + dh                   (this step's output, and the recurrence)
 *   do    = dh_t·tanh(c_t)              dc_t = dc + dh_t·o·(1 - tanh²(c_t))
 *   di    = dc_t·g   dg = dc_t·i   df = dc_t·c_{t-1}           dc <- dc_t·f
 *   dz    = (di·i(1-i), df·f(1-f), dg·(1-g²), do·o(1-o))      dh <- dz·W_hh
 * then, with every dz kept, the weight gradients are whole-sequence GEMMs:
 *   dW_ih += dzᵀ·x   dW_hh += Σ_t dz_tᵀ·h_{t-1}   db += Σ dz   dx += dz·W_ih
 * See docs/ops/lstm.md. */
#include "mcnn/gemm.h"
#include "mcnn/ops.h"

#include <math.h>
#include <string.h>

static float sigmoidf(float z) { return 1.0f / (1.0f + expf(-z)); }

static int length_of(const int32_t *lengths, int b, int T)
{
    if (!lengths) return T;
    return lengths[b] < 0 ? 0 : lengths[b] > T ? T : lengths[b];
}

void mcnn_lstm_forward(float *y, float *h_n, float *c_n, float *gates, float *cells,
                       const float *x, const float *h0, const float *c0, const int32_t *lengths,
                       const float *w_ih, const float *w_hh, const float *b_ih,
                       const float *b_hh, int B, int T, int I, int H)
{
    const int G = 4 * H;
    /* the input half of every step at once: gates (B·T, 4H) = x · W_ihᵀ + b_ih + b_hh */
    mcnn_gemm(0, 1, B * T, G, I, 1.0f, x, I, w_ih, I, 0.0f, gates, G);
    for (size_t r = 0; r < (size_t)B * T; r++)
        for (int k = 0; k < G; k++)
            gates[r * G + k] += (b_ih ? b_ih[k] : 0.0f) + (b_hh ? b_hh[k] : 0.0f);

    for (int t = 0; t < T; t++) {
        /* the recurrent half: the B rows of step t += h_{t-1} · W_hhᵀ (rows of y are T·H apart) */
        const float *h_prev = t ? y + (size_t)(t - 1) * H : h0;
        if (h_prev)
            mcnn_gemm(0, 1, B, G, H, 1.0f, h_prev, t ? T * H : H, w_hh, H, 1.0f,
                      gates + (size_t)t * G, T * G);
        #pragma omp parallel for if ((size_t)B * H > 4096)
        for (int b = 0; b < B; b++) {
            float *z = gates + ((size_t)b * T + t) * G;
            float *c = cells + ((size_t)b * T + t) * H, *h = y + ((size_t)b * T + t) * H;
            if (t >= length_of(lengths, b, T)) { /* past the end: no step, output 0 */
                memset(z, 0, sizeof(float) * G);
                memset(c, 0, sizeof(float) * H);
                memset(h, 0, sizeof(float) * H);
                continue;
            }
            const float *c_prev = t ? c - H : c0 ? c0 + (size_t)b * H : NULL;
            for (int j = 0; j < H; j++) {
                const float i = sigmoidf(z[j]), f = sigmoidf(z[H + j]);
                const float g = tanhf(z[2 * H + j]), o = sigmoidf(z[3 * H + j]);
                z[j] = i, z[H + j] = f, z[2 * H + j] = g, z[3 * H + j] = o; /* kept for backward */
                c[j] = (c_prev ? f * c_prev[j] : 0.0f) + i * g;
                h[j] = o * tanhf(c[j]);
            }
        }
    }
    /* the final state: after each sequence's own last step */
    for (int b = 0; b < B; b++) {
        const int L = length_of(lengths, b, T);
        const size_t last = ((size_t)b * T + L - 1) * H;
        if (h_n)
            for (int j = 0; j < H; j++)
                h_n[(size_t)b * H + j] = L ? y[last + j] : h0 ? h0[(size_t)b * H + j] : 0.0f;
        if (c_n)
            for (int j = 0; j < H; j++)
                c_n[(size_t)b * H + j] = L ? cells[last + j] : c0 ? c0[(size_t)b * H + j] : 0.0f;
    }
}

size_t mcnn_lstm_backward_scratch(int B, int T, int H)
{
    return (size_t)B * T * 4 * H + 2 * (size_t)B * H;
}

/* One step's gate gradients dz (B rows T·4H apart) from the carried dh, dc, updating dc. */
static void step_backward(float *dz, float *dh, float *dc, const float *dy, const float *dh_n,
                          const float *dc_n, const float *gates, const float *cells,
                          const float *c0, const int32_t *lengths, int t, int B, int T, int H)
{
    const int G = 4 * H;
    #pragma omp parallel for if ((size_t)B * H > 4096)
    for (int b = 0; b < B; b++) {
        float *z = dz + ((size_t)b * T + t) * G;
        float *dh_b = dh + (size_t)b * H, *dc_b = dc + (size_t)b * H;
        const int L = length_of(lengths, b, T);
        if (t >= L) {
            memset(z, 0, sizeof(float) * G);
            continue;
        }
        if (t == L - 1) /* the final state's gradient enters at the sequence's last step */
            for (int j = 0; j < H; j++) {
                if (dh_n) dh_b[j] += dh_n[(size_t)b * H + j];
                if (dc_n) dc_b[j] += dc_n[(size_t)b * H + j];
            }
        const float *a = gates + ((size_t)b * T + t) * G;
        const float *c = cells + ((size_t)b * T + t) * H;
        const float *c_prev = t ? c - H : c0 ? c0 + (size_t)b * H : NULL;
        const float *dy_t = dy ? dy + ((size_t)b * T + t) * H : NULL;
        for (int j = 0; j < H; j++) {
            const float i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
            const float tc = tanhf(c[j]);
            const float dh_t = dh_b[j] + (dy_t ? dy_t[j] : 0.0f);
            const float dc_t = dc_b[j] + dh_t * o * (1.0f - tc * tc);
            z[j] = dc_t * g * i * (1.0f - i);
            z[H + j] = (c_prev ? dc_t * c_prev[j] : 0.0f) * f * (1.0f - f);
            z[2 * H + j] = dc_t * i * (1.0f - g * g);
            z[3 * H + j] = dh_t * tc * o * (1.0f - o);
            dc_b[j] = dc_t * f;
        }
    }
}

void mcnn_lstm_backward(float *dx, float *dh0, float *dc0, float *dw_ih, float *dw_hh,
                        float *db_ih, float *db_hh, float *scratch, const float *dy,
                        const float *dh_n, const float *dc_n, const float *x, const float *h0,
                        const float *c0, const int32_t *lengths, const float *y,
                        const float *gates, const float *cells, const float *w_ih,
                        const float *w_hh, int B, int T, int I, int H)
{
    const int G = 4 * H;
    float *dz = scratch, *dh = dz + (size_t)B * T * G, *dc = dh + (size_t)B * H;
    memset(dh, 0, sizeof(float) * 2 * (size_t)B * H);
    for (int t = T - 1; t >= 0; t--) {
        step_backward(dz, dh, dc, dy, dh_n, dc_n, gates, cells, c0, lengths, t, B, T, H);
        /* dh reaching h_{t-1}: dz_t · W_hh (a sequence already past its end has dz_t = 0) */
        mcnn_gemm(0, 0, B, H, G, 1.0f, dz + (size_t)t * G, T * G, w_hh, H, 0.0f, dh, H);
    }
    for (int b = 0; b < B; b++) {
        const int empty = length_of(lengths, b, T) == 0; /* its final state is h0, c0 */
        for (size_t k = (size_t)b * H; k < (size_t)(b + 1) * H; k++) {
            if (dh0) dh0[k] += dh[k] + (empty && dh_n ? dh_n[k] : 0.0f);
            if (dc0) dc0[k] += dc[k] + (empty && dc_n ? dc_n[k] : 0.0f);
        }
    }

    if (dw_hh) {
        /* Σ_t dz_tᵀ · h_{t-1}: per sequence, its steps 1..T-1 against its outputs 0..T-2 */
        for (int b = 0; b < B && T > 1; b++)
            mcnn_gemm(1, 0, G, H, T - 1, 1.0f, dz + ((size_t)b * T + 1) * G, G,
                      y + (size_t)b * T * H, H, 1.0f, dw_hh, H);
        if (h0) mcnn_gemm(1, 0, G, H, B, 1.0f, dz, T * G, h0, H, 1.0f, dw_hh, H);
    }
    if (dw_ih) mcnn_gemm(1, 0, G, I, B * T, 1.0f, dz, G, x, I, 1.0f, dw_ih, I);
    if (dx) mcnn_gemm(0, 0, B * T, I, G, 1.0f, dz, G, w_ih, I, 1.0f, dx, I);
    for (int k = 0; k < G && (db_ih || db_hh); k++) {
        double s = 0.0;
        for (size_t r = 0; r < (size_t)B * T; r++) s += dz[r * G + k];
        if (db_ih) db_ih[k] += (float)s;
        if (db_hh) db_hh[k] += (float)s;
    }
}
