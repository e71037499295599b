/*
 * astrot2._gpcore: the per-light-curve work of the batched GP (see astrot2/gp.py).
 *
 * For each light curve of a range [lo, hi) of a batch (CSR offsets), in scaled units:
 *   1. screen candidate hyperparameters theta = (log A^2, log l_t) by log marginal
 *      likelihood (one Cholesky each);
 *   2. run a bound-constrained trust-region Newton ascent with the exact gradient and
 *      Hessian from the n_starts best candidates, keep the best end point, compare with
 *      the noise-only limit (A -> 0);
 *   3. evaluate the posterior mean and standard deviation on the grid.
 *
 * Kernel: A^2 (1 + sqrt3 r) exp(-sqrt3 r), r^2 = (dt / l_t)^2 + dlam^2 (wavelengths are
 * already divided by the fixed wavelength scale), plus the flux variance on the diagonal.
 *
 * The function releases the GIL; Python runs several ranges in threads.  Every light
 * curve is computed independently of the others (results do not depend on the batch).
 * C99 plus one GCC/Clang vector type (combine_rows), no BLAS: alert light curves are
 * small (tens of points), where a BLAS call costs more than the arithmetic.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Kept out of line so that profiles attribute time per stage (a call per evaluation). */
#define NOINLINE __attribute__((noinline))
#define SQRT3 1.7320508075688772
#define LOG_2PI 1.8378770664093453

enum { ST_OK = 0, ST_MAX_ITER = 1, ST_FALLBACK = 2, ST_SKIPPED = 3 };

typedef struct {
    Py_ssize_t n;
    const double *t, *lam, *y, *var;
    /* n*n work matrices */
    double *Dt, *Dl, *S, *Kl, *Kll, *U, *L, *Li, *Ki, *Ml, *Mlt;
    double *alpha, *va, *vl, *wa, *wl, *z, *dinv;
    double *grid; /* n x M */
    double *gt, *gl; /* M grid coordinates */
    double last_theta[2], last_f; /* what L, dinv and alpha currently hold */
    int last_valid;
} Work;

typedef struct {
    double lo[2], hi[2];
    int max_iter;
    double tol;
    int n_starts;
} Settings;

/* exp(x) for x <= 0, branch-free so that loops calling it vectorise: x = k ln2 + r with
 * |r| <= ln2 / 2, exp(r) by its degree-13 Taylor polynomial (relative error < 2e-16),
 * times 2^k built in the exponent bits.  Underflows to a tiny normal number below -708.
 * k rounds x / ln2 (<= 0) by truncating x / ln2 - 0.5, an int32 conversion that every
 * x86-64 and ARM vector unit has (nearbyint is a library call below SSE4.1: the
 * portable build would not vectorise). */
static inline double exp_neg(double x)
{
    x = x < -708.0 ? -708.0 : x;
    const int k = (int)(x * 1.4426950408889634 - 0.5);
    const double kf = (double)k;
    const double r = (x - kf * 6.93147180369123816490e-01) - kf * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    union { double d; int64_t i; } scale;
    scale.i = ((int64_t)k + 1023) << 52;
    return p * scale.d;
}

/* One vector register of doubles (GCC/Clang vector extension): 8 with AVX-512, 4 with
 * AVX, else 2 (SSE2, NEON: the portable build; a wider type than the target's registers
 * is lowered through memory, 10x slower).  A column's sums run in the same order for
 * every width, so results do not depend on it. */
#if defined(__AVX512F__)
#define VW 8
#elif defined(__AVX__)
#define VW 4
#else
#define VW 2
#endif
typedef double vec8 __attribute__((vector_size(VW * 8)));

/* combine_rows on NB consecutive blocks of VW columns from j, two k at a time: 2 * NB
 * independent accumulator chains hide the FMA latency.  NB is a constant at every call
 * (inlined), so the accumulators live in registers. */
static inline __attribute__((always_inline)) void combine_blocks(
    int NB, double *out, const double *base, double alpha, const double *c, Py_ssize_t cs,
    const double *A, Py_ssize_t nk, Py_ssize_t n, Py_ssize_t j, Py_ssize_t j1)
{
    vec8 acc[4] = {{0.0}}, acc2[4] = {{0.0}};
    if (base)
        for (int b = 0; b < NB; b++) memcpy(&acc[b], base + j + b * VW, sizeof(vec8));
    Py_ssize_t k = 0;
    for (; k + 1 < nk; k += 2) {
        const double c0 = alpha * c[k * cs], c1 = alpha * c[(k + 1) * cs];
        const double *a0 = A + k * n + j, *a1 = a0 + n;
        for (int b = 0; b < NB; b++) {
            vec8 x, y;
            memcpy(&x, a0 + b * VW, sizeof x);
            memcpy(&y, a1 + b * VW, sizeof y);
            acc[b] += c0 * x;
            acc2[b] += c1 * y;
        }
    }
    if (k < nk) {
        const double c0 = alpha * c[k * cs];
        const double *a0 = A + k * n + j;
        for (int b = 0; b < NB; b++) {
            vec8 x;
            memcpy(&x, a0 + b * VW, sizeof x);
            acc[b] += c0 * x;
        }
    }
    for (int b = 0; b < NB; b++) {
        const vec8 v = acc[b] + acc2[b];
        const Py_ssize_t at = j + b * VW, m = j1 - at < VW ? j1 - at : VW;
        if (m == VW) {
            memcpy(out + at, &v, sizeof v);
        } else {
            for (Py_ssize_t t = 0; t < m; t++) out[at + t] = v[t];
        }
    }
}

/* out[j] = base[j] + alpha * sum_{k < nk} c[k * cs] * A[k * n + j], for j0 <= j < j1.
 *
 * The work of every O(n^3) step (Cholesky, L^-1, K^-1, K^-1 K_l) in one shape: a linear
 * combination of matrix rows, with the output kept in registers while k runs
 * (dot-product forms spend their time in horizontal sums at these sizes, axpy forms in
 * store-to-load forwarding).  Loads may read up to VW - 1 doubles past a row end (the
 * work buffer carries that slack); those lanes are never stored.  base may alias out;
 * NULL means zero. */
static void combine_rows(double *out, const double *base, double alpha, const double *c,
                         Py_ssize_t cs, const double *A, Py_ssize_t nk, Py_ssize_t n,
                         Py_ssize_t j0, Py_ssize_t j1)
{
    for (Py_ssize_t j = j0; j < j1; j += 4 * VW) {
        const Py_ssize_t blocks = (j1 - j + VW - 1) / VW;
        switch (blocks) {
        case 1: combine_blocks(1, out, base, alpha, c, cs, A, nk, n, j, j1); break;
        case 2: combine_blocks(2, out, base, alpha, c, cs, A, nk, n, j, j1); break;
        case 3: combine_blocks(3, out, base, alpha, c, cs, A, nk, n, j, j1); break;
        default: combine_blocks(4, out, base, alpha, c, cs, A, nk, n, j, j1); break;
        }
    }
}

/* Squared time and wavelength separations of every pair (full n x n): they do not
 * depend on the hyperparameters, so every build() below is one flat, vectorised pass. */
static void separations(Work *w)
{
    const Py_ssize_t n = w->n;
    for (Py_ssize_t i = 0; i < n; i++) {
        for (Py_ssize_t j = 0; j < n; j++) {
            const double dt = w->t[i] - w->t[j], dl = w->lam[i] - w->lam[j];
            w->Dt[i * n + j] = dt * dt;
            w->Dl[i * n + j] = dl * dl;
        }
    }
}

/* Upper triangles (j >= i) of the signal covariance S and (optionally) its derivatives
 * w.r.t. log l_t, one vectorised pass per row.  The Cholesky reads only these;
 * mirror() completes the matrices for derivatives(). */
NOINLINE static void build(const double *theta, Work *w, int derivs)
{
    const Py_ssize_t n = w->n;
    const double amp2 = exp(theta[0]);
    const double inv_l2 = exp(-2.0 * theta[1]);
    for (Py_ssize_t i = 0; i < n; i++) {
        const double *restrict Dt = w->Dt + i * n, *restrict Dl = w->Dl + i * n;
        double *restrict S = w->S + i * n;
        if (!derivs) {
            for (Py_ssize_t j = i; j < n; j++) {
                const double r = sqrt(Dt[j] * inv_l2 + Dl[j]);
                S[j] = (1.0 + SQRT3 * r) * amp2 * exp_neg(-SQRT3 * r);
            }
            continue;
        }
        double *restrict Kl = w->Kl + i * n, *restrict Kll = w->Kll + i * n;
        for (Py_ssize_t j = i; j < n; j++) {
            const double u = Dt[j] * inv_l2;
            const double r = sqrt(u + Dl[j]);
            const double e = amp2 * exp_neg(-SQRT3 * r);
            const double u2r = r > 0.0 ? u * u / r : 0.0;
            S[j] = (1.0 + SQRT3 * r) * e;
            Kl[j] = 3.0 * u * e;
            Kll[j] = e * (-6.0 * u + 3.0 * SQRT3 * u2r);
        }
    }
}

/* Copy the upper triangles of S, K_l and K_ll into their lower triangles. */
static void mirror(Work *w)
{
    const Py_ssize_t n = w->n;
    double *restrict S = w->S, *restrict Kl = w->Kl, *restrict Kll = w->Kll;
    for (Py_ssize_t i = 1; i < n; i++) {
        for (Py_ssize_t j = 0; j < i; j++) {
            S[i * n + j] = S[j * n + i];
            Kl[i * n + j] = Kl[j * n + i];
            Kll[i * n + j] = Kll[j * n + i];
        }
    }
}

/* Cholesky of S + diag(var), row by row on U = L^T (row-major upper triangle, rows are
 * combinations of the rows above: combine_rows), then L = U^T for the row users.
 * w->dinv keeps 1 / L[j, j].  Returns 0 if the matrix is not positive definite. */
NOINLINE static int cholesky(Work *w)
{
    const Py_ssize_t n = w->n;
    double *restrict U = w->U, *restrict L = w->L, *restrict dinv = w->dinv;
    for (Py_ssize_t i = 0; i < n; i++) { /* U[i, i:] = A[i, i:] - sum_j<i U[j, i] U[j, i:] */
        double *ui = U + i * n;
        memcpy(ui + i, w->S + i * n + i, sizeof(double) * (size_t)(n - i));
        ui[i] += w->var[i];
        combine_rows(ui, ui, -1.0, U + i, n, U, i, n, i, n);
        const double d = ui[i];
        if (!(d > 0.0) || !isfinite(d)) return 0;
        ui[i] = sqrt(d);
        dinv[i] = 1.0 / ui[i];
        for (Py_ssize_t k = i + 1; k < n; k++) ui[k] *= dinv[i];
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        double *restrict li = L + i * n;
        for (Py_ssize_t j = 0; j <= i; j++) li[j] = U[j * n + i];
        for (Py_ssize_t j = i + 1; j < n; j++) li[j] = 0.0;
    }
    return 1;
}

/* z = L^-1 y (axpy form on the rows of U); returns |z|^2 and adds log det L to *logdet. */
static double forward(Work *w, double *logdet)
{
    const Py_ssize_t n = w->n;
    const double *restrict U = w->U;
    double *restrict z = w->z;
    double quad = 0.0, ld = 0.0;
    memcpy(z, w->y, sizeof(double) * (size_t)n);
    for (Py_ssize_t k = 0; k < n; k++) {
        const double zk = z[k] * w->dinv[k];
        const double *restrict uk = U + k * n;
        z[k] = zk;
        for (Py_ssize_t i = k + 1; i < n; i++) z[i] -= zk * uk[i];
        quad += zk * zk;
        ld += log(uk[k]);
    }
    *logdet = ld;
    return quad;
}

/* Log marginal likelihood only (scaled units); -inf if not positive definite. */
NOINLINE static double lml(const double *theta, Work *w)
{
    const Py_ssize_t n = w->n;
    w->last_valid = 0;
    build(theta, w, 0);
    if (!cholesky(w)) return -INFINITY;
    double logdet;
    const double quad = forward(w, &logdet);
    return -0.5 * quad - logdet - 0.5 * (double)n * LOG_2PI;
}

/* X = L^-1 (row-major, lower; X[i, :] = (e_i - sum_k<i L[i, k] X[k, :]) / L[i, i]) and
 * K^-1 = X^T X (K^-1[a, :a+1] = sum_k>=a X[k, a] X[k, :a+1]) into Ki. */
NOINLINE static void inverses(Work *w)
{
    const Py_ssize_t n = w->n;
    const double *restrict L = w->L;
    double *restrict X = w->Li, *restrict Ki = w->Ki;
    for (Py_ssize_t i = 0; i < n; i++) {
        double *xi = X + i * n;
        memset(xi, 0, sizeof(double) * (size_t)n);
        xi[i] = 1.0;
        combine_rows(xi, xi, -1.0, L + i * n, 1, X, i, n, 0, i + 1);
        for (Py_ssize_t j = 0; j <= i; j++) xi[j] *= w->dinv[i];
    }
    for (Py_ssize_t a = 0; a < n; a++)
        combine_rows(Ki + a * n, NULL, 1.0, X + a * n + a, n, X + a * n, n - a, n, 0, a + 1);
    for (Py_ssize_t i = 0; i < n; i++)
        for (Py_ssize_t j = i + 1; j < n; j++) Ki[i * n + j] = Ki[j * n + i];
}

/* Factor K at theta: build S and its derivatives, Cholesky, alpha = K^-1 y by two
 * triangular solves.  Returns the log likelihood (-inf on failure) and leaves L, dinv,
 * alpha, S, Kl, Kll ready for derivatives() and predict(). */
NOINLINE static double factor(const double *theta, Work *w)
{
    const Py_ssize_t n = w->n;
    const double *L = w->L;
    w->last_valid = 0;
    build(theta, w, 1);
    if (!cholesky(w)) return -INFINITY;
    double logdet;
    const double quad = forward(w, &logdet);
    double *restrict alpha = w->alpha;
    memcpy(alpha, w->z, sizeof(double) * (size_t)n);
    for (Py_ssize_t i = n - 1; i >= 0; i--) { /* alpha = L^-T z, axpy on the rows of L */
        const double ai = alpha[i] * w->dinv[i];
        const double *restrict li = L + i * n;
        alpha[i] = ai;
        for (Py_ssize_t k = 0; k < i; k++) alpha[k] -= ai * li[k];
    }
    const double f = -0.5 * quad - logdet - 0.5 * (double)n * LOG_2PI;
    if (!isfinite(f)) return -INFINITY;
    w->last_theta[0] = theta[0];
    w->last_theta[1] = theta[1];
    w->last_f = f;
    w->last_valid = 1;
    return f;
}

/* Gradient and Hessian of the log likelihood at the point of the last factor().
 * Returns 0 if they are not finite. */
NOINLINE static int derivatives(Work *w, double *g, double *H)
{
    const Py_ssize_t n = w->n;
    mirror(w);
    inverses(w);
    double *Ki = w->Ki, *S = w->S, *Kl = w->Kl, *Kll = w->Kll, *Ml = w->Ml;
    for (Py_ssize_t i = 0; i < n; i++) {
        double sa = 0.0, sl = 0.0;
        for (Py_ssize_t k = 0; k < n; k++) {
            sa += S[i * n + k] * w->alpha[k];
            sl += Kl[i * n + k] * w->alpha[k];
        }
        w->va[i] = sa;
        w->vl[i] = sl;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        double sa = 0.0, sl = 0.0;
        for (Py_ssize_t k = 0; k < n; k++) {
            sa += Ki[i * n + k] * w->va[k];
            sl += Ki[i * n + k] * w->vl[k];
        }
        w->wa[i] = sa;
        w->wl[i] = sl;
    }
    /* M_l = K^-1 K_l row by row (M_l[i, :] = sum_k K^-1[i, k] K_l[k, :]);
     * its transpose is kept too so that the trace loop below reads memory in order. */
    double *restrict Mlt = w->Mlt;
    for (Py_ssize_t i = 0; i < n; i++) combine_rows(Ml + i * n, NULL, 1.0, Ki + i * n, 1, Kl, n, n, 0, n);
    for (Py_ssize_t i = 0; i < n; i++)
        for (Py_ssize_t j = 0; j < n; j++) Mlt[j * n + i] = Ml[i * n + j];
    /* Traces.  M_a = K^-1 S = I - K^-1 D: with a_ij = K^-1[i,j] var_j, b_ij = K^-1[i,j]
     * var_i (K^-1 symmetric), tr(M_a M_a) = sum a b + sum_i (1 - 2 a_ii) and
     * tr(M_a M_l) = tr(M_l) - sum a_ij M_l[j,i]. */
    double tr_a = 0, tr_l = 0, tr_ll = 0, t_ab = 0, t_al = 0, t_ll = 0, alla = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const double *restrict ki = Ki + i * n, *restrict si = S + i * n;
        const double *restrict kli = Kl + i * n, *restrict klli = Kll + i * n;
        const double *restrict mli = Ml + i * n, *restrict mlti = Mlt + i * n;
        const double *restrict var = w->var, *restrict alpha = w->alpha;
        const double vi = var[i], ai = alpha[i];
        double s_a = 0, s_l = 0, s_ll = 0, s_ab = 0, s_al = 0, s_mm = 0, s_k = 0;
        for (Py_ssize_t j = 0; j < n; j++) {
            const double kij = ki[j];
            const double a = kij * var[j];
            s_a += kij * si[j];
            s_l += kij * kli[j];
            s_ll += kij * klli[j];
            s_ab += a * (kij * vi);
            s_al += a * mlti[j];
            s_mm += mli[j] * mlti[j];
            s_k += klli[j] * alpha[j];
        }
        const double aii = ki[i] * vi;
        tr_a += s_a;
        tr_l += s_l;
        tr_ll += s_ll;
        t_ab += s_ab + 1.0 - 2.0 * aii;
        t_al += mli[i] - s_al;
        t_ll += s_mm;
        alla += ai * s_k;
    }
    const double t_aa = t_ab;
    double asa = 0, ala = 0, vawa = 0, vawl = 0, vlwl = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        asa += w->alpha[i] * w->va[i];
        ala += w->alpha[i] * w->vl[i];
        vawa += w->va[i] * w->wa[i];
        vawl += w->va[i] * w->wl[i];
        vlwl += w->vl[i] * w->wl[i];
    }
    g[0] = 0.5 * asa - 0.5 * tr_a;
    g[1] = 0.5 * ala - 0.5 * tr_l;
    H[0] = 0.5 * asa - vawa - 0.5 * tr_a + 0.5 * t_aa;
    H[1] = H[2] = 0.5 * ala - vawl - 0.5 * tr_l + 0.5 * t_al;
    H[3] = 0.5 * alla - vlwl - 0.5 * tr_ll + 0.5 * t_ll;
    return isfinite(g[0]) && isfinite(g[1]) && isfinite(H[0]) && isfinite(H[1])
        && isfinite(H[3]);
}

static double model_gain(const double *s, const double *g, const double *h)
{
    return g[0] * s[0] + g[1] * s[1]
        + 0.5 * (s[0] * (h[0] * s[0] + h[1] * s[1]) + s[1] * (h[2] * s[0] + h[3] * s[1]));
}

static double clamp(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* One bounded trust-region step (see gp.py notes); returns the gain of the full step. */
static double trust_step(const double *theta, const double *grad, const double *hess,
                         double radius, const Settings *cfg, double *step)
{
    double g[2], h[4];
    int frozen[2];
    memcpy(h, hess, sizeof h);
    for (int j = 0; j < 2; j++) {
        frozen[j] = (theta[j] <= cfg->lo[j] + 1e-12 && grad[j] < 0)
            || (theta[j] >= cfg->hi[j] - 1e-12 && grad[j] > 0);
        g[j] = frozen[j] ? 0.0 : grad[j];
    }
    for (int j = 0; j < 2; j++) {
        if (frozen[j]) {
            h[j * 2 + 0] = h[j * 2 + 1] = 0.0;
            h[0 * 2 + j] = h[1 * 2 + j] = 0.0;
            h[j * 2 + j] = -1.0;
        }
    }
    /* largest eigenvalue of the symmetric 2x2 h */
    const double mean = 0.5 * (h[0] + h[3]);
    const double dif = 0.5 * (h[0] - h[3]);
    const double lam_max = mean + sqrt(dif * dif + h[1] * h[1]);
    const double mu = lam_max < -1e-10 ? 0.0 : lam_max + 1e-6 + 1e-3 * fabs(lam_max);
    const double a00 = mu - h[0], a01 = -h[1], a11 = mu - h[3];
    const double det = a00 * a11 - a01 * a01;
    step[0] = (a11 * g[0] - a01 * g[1]) / det;
    step[1] = (a00 * g[1] - a01 * g[0]) / det;
    const double a_diag[2] = {a00, a11};
    for (int j = 0; j < 2; j++) { /* fix a coordinate crossing its bound, re-solve the other */
        const double target = clamp(theta[j] + step[j], cfg->lo[j], cfg->hi[j]);
        if (target != theta[j] + step[j]) {
            const int i = 1 - j;
            step[j] = target - theta[j];
            step[i] = (g[i] + h[i * 2 + j] * step[j]) / a_diag[i];
        }
    }
    for (int j = 0; j < 2; j++) step[j] = clamp(theta[j] + step[j], cfg->lo[j], cfg->hi[j]) - theta[j];
    double full_gain = model_gain(step, g, h);
    const double norm = sqrt(step[0] * step[0] + step[1] * step[1]);
    if (norm > radius) {
        step[0] *= radius / norm;
        step[1] *= radius / norm;
    }
    if (!(model_gain(step, g, h) > 0.0)) { /* projected gradient step instead */
        const double gn = fmax(sqrt(g[0] * g[0] + g[1] * g[1]), 1e-300);
        for (int j = 0; j < 2; j++)
            step[j] = clamp(theta[j] + g[j] * radius / gn, cfg->lo[j], cfg->hi[j]) - theta[j];
        full_gain = fmax(full_gain, model_gain(step, g, h));
    }
    return isfinite(full_gain) ? full_gain : 0.0;
}

/* Newton ascent from theta (updated in place).  Returns the final likelihood.
 *
 * The likelihood of a trial point costs one Cholesky (factor); its gradient and Hessian
 * (derivatives, ~4x more) are computed only where the ascent goes on from it, not for
 * rejected trials.  With `seen`
 * (the end point of an earlier start), the ascent stops as soon as it comes within
 * 1e-3 of it in both coordinates: from there it converges to that same optimum. */
static double newton(double *theta, Work *w, const Settings *cfg, const double *seen,
                     int *n_iter, int *status)
{
    double g[2], H[4], gt[2], Ht[4], step[2], trial[2];
    double f = factor(theta, w);
    double radius = 2.0;
    *status = ST_FALLBACK;
    if (!isfinite(f) || !derivatives(w, g, H)) return -INFINITY;
    *status = ST_MAX_ITER;
    for (int it = 0; it < cfg->max_iter; it++) {
        const double gain = trust_step(theta, g, H, radius, cfg, step);
        if (gain < cfg->tol || radius < 1e-8) {
            *status = ST_OK;
            break;
        }
        trial[0] = theta[0] + step[0];
        trial[1] = theta[1] + step[1];
        const double ft = factor(trial, w);
        (*n_iter)++;
        if (ft >= f - 1e-12 * fabs(f)) {
            if (seen && fabs(trial[0] - seen[0]) < 1e-3 && fabs(trial[1] - seen[1]) < 1e-3) {
                theta[0] = trial[0];
                theta[1] = trial[1];
                f = ft;
                *status = ST_OK;
                break;
            }
            if (!derivatives(w, gt, Ht)) {
                radius *= 0.25;
                continue;
            }
            const double norm = sqrt(step[0] * step[0] + step[1] * step[1]);
            theta[0] = trial[0];
            theta[1] = trial[1];
            f = ft;
            memcpy(g, gt, sizeof g);
            memcpy(H, Ht, sizeof H);
            if (norm >= 0.9 * radius) radius = fmin(2.0 * radius, 8.0);
        } else {
            radius *= 0.25;
        }
    }
    return f;
}

/* Posterior mean and std on the grid at theta, from the last factor() (L, alpha). */
NOINLINE static void predict(Work *w, const double *theta, const double *grid_t,
                             Py_ssize_t n_steps, const double *grid_lam, Py_ssize_t n_bands,
                             double *mean, double *std)
{
    const Py_ssize_t n = w->n;
    const double amp2 = exp(theta[0]);
    const double inv_l = exp(-theta[1]);
    /* K* (n x M, row-major), mean = alpha . K*, then L V = K* row by row: every inner
     * loop runs over the M grid points (contiguous, independent). */
    const Py_ssize_t M = n_steps * n_bands;
    double *restrict ks = w->grid, *restrict gt = w->gt, *restrict gl = w->gl;
    for (Py_ssize_t s = 0; s < n_steps; s++) {
        for (Py_ssize_t b = 0; b < n_bands; b++) {
            gt[s * n_bands + b] = grid_t[s];
            gl[s * n_bands + b] = grid_lam[b];
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        double *restrict row = ks + i * M;
        const double ti = w->t[i], li = w->lam[i];
        for (Py_ssize_t m = 0; m < M; m++) {
            const double dt = (gt[m] - ti) * inv_l;
            const double dl = gl[m] - li;
            const double r = sqrt(dt * dt + dl * dl);
            row[m] = amp2 * (1.0 + SQRT3 * r) * exp_neg(-SQRT3 * r);
        }
    }
    for (Py_ssize_t m = 0; m < M; m++) {
        mean[m] = 0.0;
        std[m] = 0.0; /* accumulates |v|^2 */
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        double *restrict row = ks + i * M;
        const double ai = w->alpha[i];
        for (Py_ssize_t m = 0; m < M; m++) mean[m] += ai * row[m];
        /* row_i -= sum_j<i L[i, j] V_j (V_j in place) */
        combine_rows(row, row, -1.0, w->L + i * n, 1, ks, i, M, 0, M);
        const double d = w->dinv[i];
        for (Py_ssize_t m = 0; m < M; m++) {
            row[m] *= d;
            std[m] += row[m] * row[m];
        }
    }
    for (Py_ssize_t m = 0; m < M; m++) std[m] = sqrt(fmax(amp2 - std[m], 0.0));
}

/* Fit one light curve; writes theta[2], f, n_iter, status, mean/std[n_grid]. */
static void fit_one(Work *w, const Settings *cfg, const double *starts, Py_ssize_t n_cand,
                    const double *grid_t, Py_ssize_t n_steps, const double *grid_lam,
                    Py_ssize_t n_bands, double *theta_out, double *f_out, int *iter_out,
                    int *status_out, double *mean, double *std)
{
    const Py_ssize_t n = w->n;
    /* 1. screening (gp.py checks that n_starts <= n_cand) */
    const int k = cfg->n_starts < n_cand ? cfg->n_starts : (int)n_cand;
    double best_f[k > 0 ? k : 1];
    Py_ssize_t best_c[k > 0 ? k : 1];
    for (int i = 0; i < k; i++) {
        best_f[i] = -INFINITY;
        best_c[i] = -1;
    }
    for (Py_ssize_t c = 0; c < n_cand; c++) {
        const double fc = lml(starts + 2 * c, w);
        for (int i = 0; i < k; i++) { /* insertion into the top-k (stable: earlier wins) */
            if (fc > best_f[i] || best_c[i] < 0) {
                for (int m = k - 1; m > i; m--) {
                    best_f[m] = best_f[m - 1];
                    best_c[m] = best_c[m - 1];
                }
                best_f[i] = fc;
                best_c[i] = c;
                break;
            }
        }
    }
    /* 2. Newton from the best starts */
    double theta[2] = {starts[0], starts[1]}, f = -INFINITY;
    int status = ST_FALLBACK, iters = 0;
    for (int i = 0; i < k; i++) {
        double th[2] = {starts[2 * best_c[i]], starts[2 * best_c[i] + 1]};
        int st = ST_FALLBACK;
        const double fi = newton(th, w, cfg, isfinite(f) ? theta : NULL, &iters, &st);
        if (st != ST_FALLBACK && fi > f) {
            f = fi;
            theta[0] = th[0];
            theta[1] = th[1];
            status = st;
        }
    }
    /* noise-only limit; the status stays the ascent's (max_iter: it did not converge) */
    double noise = -0.5 * (double)n * LOG_2PI;
    for (Py_ssize_t i = 0; i < n; i++)
        noise -= 0.5 * w->y[i] * w->y[i] / w->var[i] + 0.5 * log(w->var[i]);
    if (status != ST_FALLBACK && noise > f + 1e-9) theta[0] = cfg->lo[0];
    if (status == ST_FALLBACK) {
        theta[0] = starts[0];
        theta[1] = starts[1];
    }
    /* 3. final factorisation (unless the work buffers already hold it) and the grid */
    if (w->last_valid && w->last_theta[0] == theta[0] && w->last_theta[1] == theta[1]) {
        f = w->last_f;
    } else {
        f = factor(theta, w);
    }
    if (!isfinite(f) && status == ST_FALLBACK) {
        /* the initial guess breaks down too (e.g. points at one time and band with tiny
         * errors): the noise-only limit, whose covariance is nearly diag(var) */
        theta[0] = cfg->lo[0];
        f = factor(theta, w);
    }
    theta_out[0] = theta[0];
    theta_out[1] = theta[1];
    *f_out = f;
    *iter_out = iters;
    *status_out = isfinite(f) ? status : ST_FALLBACK;
    if (!isfinite(f)) {
        for (Py_ssize_t m = 0; m < n_steps * n_bands; m++) mean[m] = std[m] = NAN;
        return;
    }
    predict(w, theta, grid_t, n_steps, grid_lam, n_bands, mean, std);
}

static int alloc_work(Work *w, Py_ssize_t nmax, Py_ssize_t m)
{
    const size_t nn = (size_t)nmax * (size_t)nmax;
    /* zeroed, with VW doubles of slack at the end: combine_rows reads past row ends */
    double *mem = calloc(11 * nn + 7 * (size_t)nmax + (size_t)(nmax + 2) * m + VW, sizeof(double));
    if (!mem) return 0;
    w->Dt = mem;
    w->Dl = w->Dt + nn;
    w->S = w->Dl + nn;
    w->Kl = w->S + nn;
    w->Kll = w->Kl + nn;
    w->U = w->Kll + nn;
    w->L = w->U + nn;
    w->Li = w->L + nn;
    w->Ki = w->Li + nn;
    w->Ml = w->Ki + nn;
    w->Mlt = w->Ml + nn;
    w->alpha = w->Mlt + nn;
    w->va = w->alpha + nmax;
    w->vl = w->va + nmax;
    w->wa = w->vl + nmax;
    w->wl = w->wa + nmax;
    w->z = w->wl + nmax;
    w->dinv = w->z + nmax;
    w->grid = w->dinv + nmax;
    w->gt = w->grid + (size_t)nmax * m;
    w->gl = w->gt + m;
    return 1;
}

static PyObject *fit_range(PyObject *self, PyObject *args)
{
    Py_buffer b_off, b_t, b_lam, b_y, b_var, b_starts, b_grid_t, b_grid_lam, b_bounds;
    Py_buffer b_theta, b_f, b_iter, b_status, b_mean, b_std;
    Py_ssize_t lo, hi;
    int max_iter, n_starts;
    double tol;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*y*nnidiw*w*w*w*w*w*", &b_off, &b_t, &b_lam,
                          &b_y, &b_var, &b_starts, &b_grid_t, &b_grid_lam, &b_bounds, &lo, &hi,
                          &max_iter, &tol, &n_starts, &b_theta, &b_f, &b_iter, &b_status,
                          &b_mean, &b_std))
        return NULL;
    const long long *off = b_off.buf;
    const double *t = b_t.buf, *lam = b_lam.buf, *y = b_y.buf, *var = b_var.buf;
    const double *starts = b_starts.buf, *grid_t = b_grid_t.buf, *grid_lam = b_grid_lam.buf;
    const double *bounds = b_bounds.buf;
    const Py_ssize_t n_cand = b_starts.len / (Py_ssize_t)(2 * sizeof(double));
    const Py_ssize_t n_bands = b_grid_lam.len / (Py_ssize_t)sizeof(double);
    const Py_ssize_t n_obj = b_f.len / (Py_ssize_t)sizeof(double);
    const Py_ssize_t n_steps = b_grid_t.len / (Py_ssize_t)sizeof(double) / (n_obj ? n_obj : 1);
    double *theta = b_theta.buf, *f = b_f.buf, *mean = b_mean.buf, *std = b_std.buf;
    int *iters = b_iter.buf, *status = b_status.buf;
    Settings cfg = {{bounds[0], bounds[2]}, {bounds[1], bounds[3]}, max_iter, tol, n_starts};

    Py_ssize_t nmax = 1;
    for (Py_ssize_t o = lo; o < hi; o++)
        if (off[o + 1] - off[o] > nmax) nmax = off[o + 1] - off[o];
    Work w;
    int ok = alloc_work(&w, nmax, n_steps * n_bands);
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t o = lo; o < hi; o++) {
            const Py_ssize_t a = off[o], n = off[o + 1] - off[o];
            const Py_ssize_t m = n_steps * n_bands;
            if (n == 0) {
                status[o] = ST_SKIPPED;
                continue;
            }
            w.n = n;
            w.t = t + a;
            w.lam = lam + a;
            w.y = y + a;
            w.var = var + a;
            separations(&w);
            fit_one(&w, &cfg, starts, n_cand, grid_t + o * n_steps, n_steps, grid_lam, n_bands,
                    theta + 2 * o, f + o, iters + o, status + o, mean + o * m, std + o * m);
        }
        Py_END_ALLOW_THREADS
        free(w.Dt);
    }
    PyBuffer_Release(&b_off); PyBuffer_Release(&b_t); PyBuffer_Release(&b_lam);
    PyBuffer_Release(&b_y); PyBuffer_Release(&b_var); PyBuffer_Release(&b_starts);
    PyBuffer_Release(&b_grid_t); PyBuffer_Release(&b_grid_lam); PyBuffer_Release(&b_bounds);
    PyBuffer_Release(&b_theta); PyBuffer_Release(&b_f); PyBuffer_Release(&b_iter);
    PyBuffer_Release(&b_status); PyBuffer_Release(&b_mean); PyBuffer_Release(&b_std);
    if (!ok) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"fit_range", fit_range, METH_VARARGS,
     "fit_range(offsets, t, lam, y, var, starts, grid_t, grid_lam, bounds, lo, hi, max_iter, "
     "tol, n_starts, theta, f, n_iter, status, mean, std): fit light curves lo..hi-1."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_gpcore",
                                    "Per-light-curve GP fitting kernels of astrot2.gp.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__gpcore(void) { return PyModule_Create(&module); }
