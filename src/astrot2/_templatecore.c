/*
 * astrot2._templatecore: the per-light-curve work of the SALT2 grid fit (astrot2/templates.py).
 *
 * For each light curve of a range [lo, hi) of a batch (CSR offsets) and each hypothesis of a
 * grid (redshift z, time of B maximum t0, colour c), the model of a point in band b at
 * observer time t is
 *
 *     x0 * (M0_b(p; z, c) + x1 * M1_b(p; z, c)),   p = (t - t0) / (1 + z),
 *
 * with the band fluxes M0, M1 tabulated on a regular rest-frame phase grid (linear
 * interpolation; zero before the first phase, the last value fading by `late_decay`
 * magnitudes per rest-frame day after the last one).  The model is linear in (x0, x0 x1):
 * weighted least squares gives them in closed form.  The allowed set (x0 >= 0,
 * |x1| <= x1_max) is a convex cone in (x0, x0 x1): where the unconstrained answer lies
 * outside it, or is not unique, the optimum lies on one of its two edges x1 = +-x1_max
 * (x0 >= 0 fitted on each; x0 = 0 is the no-source end of both).  A point whose band the
 * table does not cover at that z (NaN) counts as unexplained, w f^2.
 *
 * A table of one component (M1 zero everywhere, `one` set: core-collapse templates) skips
 * M1's arithmetic: with a01 = a11 = b1 = 0 the general path takes the x1 = +x1_max edge,
 * x0 = max(b0 / a00, 0), which the one-component loop computes in the same operations (the
 * same bits in the portable build; the opt-in native build, ASTROT2_NATIVE=1, may contract
 * the two paths' products differently, ~1e-9 of chi2).
 *
 * Writes chi2, x0 and x1 of every hypothesis: arrays (n, nz, nc, nt).  Releases the GIL;
 * light curves are independent of each other (results do not depend on the batch).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    const double *table; /* (2, nz, nc, nb, nph) */
    Py_ssize_t nz, nc, nb, nph, nt;
    int one; /* M1 is zero: one amplitude */
    double phase0, dphase, late_decay, x1_max;
    const double *zgrid; /* nz */
    const double *t0;    /* (nz, nt): observer-frame offsets of t0 */
} Grid;

/* Chi-square with x1 fixed and the best x0 >= 0 (written to *x0). */
static double edge_chi2(double x1, double a00, double a01, double a11, double b0, double b1,
                        double ff, double *x0)
{
    const double den = a00 + 2.0 * x1 * a01 + x1 * x1 * a11;
    *x0 = den > 0.0 ? fmax((b0 + x1 * b1) / den, 0.0) : 0.0;
    return ff - 2.0 * *x0 * (b0 + x1 * b1) + *x0 * *x0 * den;
}

/* One hypothesis (z, t0) of one light curve: every colour at once. */
static void fit_hypothesis(const Grid *g, Py_ssize_t iz, Py_ssize_t it, Py_ssize_t n,
                           const double *dt, const int64_t *band, const double *f,
                           const double *w, Py_ssize_t *idx, double *frac, double *scale,
                           double *chi2, double *x0o, double *x1o, Py_ssize_t stride)
{
    const double opz = 1.0 + g->zgrid[iz], t0 = g->t0[iz * g->nt + it];
    const double last = g->phase0 + (double)(g->nph - 1) * g->dphase;
    for (Py_ssize_t k = 0; k < n; k++) {
        const double p = (dt[k] - t0) / opz;
        if (p < g->phase0) {
            idx[k] = -1; /* before the template: no flux */
            continue;
        }
        if (p >= last) {
            idx[k] = g->nph - 2;
            frac[k] = 1.0;
            scale[k] = pow(10.0, -0.4 * g->late_decay * (p - last));
        } else {
            const double u = (p - g->phase0) / g->dphase;
            Py_ssize_t i = (Py_ssize_t)u;
            if (i > g->nph - 2) i = g->nph - 2;
            idx[k] = i;
            frac[k] = u - (double)i;
            scale[k] = 1.0;
        }
    }
    const Py_ssize_t comp = g->nz * g->nc * g->nb * g->nph; /* M1 follows M0 */
    for (Py_ssize_t ic = 0; ic < g->nc; ic++) {
        const double *tab = g->table + ((iz * g->nc + ic) * g->nb) * g->nph;
        double a00 = 0, a01 = 0, a11 = 0, b0 = 0, b1 = 0, ff = 0, lost = 0;
        if (g->one) {
            for (Py_ssize_t k = 0; k < n; k++) {
                const double wf = w[k] * f[k];
                if (idx[k] < 0) {
                    ff += wf * f[k];
                    continue;
                }
                const double *row = tab + band[k] * g->nph + idx[k];
                const double m0 = (row[0] + (row[1] - row[0]) * frac[k]) * scale[k];
                if (!isfinite(m0)) {
                    lost += wf * f[k];
                    continue;
                }
                a00 += w[k] * m0 * m0;
                b0 += wf * m0;
                ff += wf * f[k];
            }
            double x0;
            const double c2 = edge_chi2(g->x1_max, a00, 0.0, 0.0, b0, 0.0, ff, &x0);
            const Py_ssize_t at = ic * stride;
            chi2[at] = fmax(c2, 0.0) + lost;
            x0o[at] = x0;
            x1o[at] = g->x1_max;
            continue;
        }
        for (Py_ssize_t k = 0; k < n; k++) {
            const double wf = w[k] * f[k];
            if (idx[k] < 0) {
                ff += wf * f[k];
                continue;
            }
            const double *row = tab + band[k] * g->nph + idx[k];
            const double m0 = (row[0] + (row[1] - row[0]) * frac[k]) * scale[k];
            const double m1 = (row[comp] + (row[comp + 1] - row[comp]) * frac[k]) * scale[k];
            if (!(isfinite(m0) && isfinite(m1))) { /* band outside the template at this z */
                lost += wf * f[k];
                continue;
            }
            a00 += w[k] * m0 * m0;
            a01 += w[k] * m0 * m1;
            a11 += w[k] * m1 * m1;
            b0 += wf * m0;
            b1 += wf * m1;
            ff += wf * f[k];
        }
        double x0, x1, c2;
        const double det = a00 * a11 - a01 * a01;
        x0 = (a11 * b0 - a01 * b1) / det;
        x1 = (a00 * b1 - a01 * b0) / det / x0;
        if (a00 > 0.0 && det > 1e-12 * a00 * a11 && isfinite(x1) && x0 > 0.0
            && fabs(x1) <= g->x1_max) {
            c2 = ff - 2.0 * x0 * (b0 + x1 * b1)
                 + x0 * x0 * (a00 + 2.0 * x1 * a01 + x1 * x1 * a11);
        } else { /* the optimum lies on an edge x1 = +-x1_max of the allowed cone */
            double x0m;
            const double cp = edge_chi2(g->x1_max, a00, a01, a11, b0, b1, ff, &x0);
            const double cm = edge_chi2(-g->x1_max, a00, a01, a11, b0, b1, ff, &x0m);
            x1 = g->x1_max;
            c2 = cp;
            if (cm < cp) {
                x0 = x0m;
                x1 = -g->x1_max;
                c2 = cm;
            }
        }
        const Py_ssize_t at = ic * stride;
        chi2[at] = fmax(c2, 0.0) + lost;
        x0o[at] = x0;
        x1o[at] = x1;
    }
}

static PyObject *fit_range(PyObject *self, PyObject *args)
{
    Py_buffer b_off, b_dt, b_band, b_f, b_w, b_table, b_z, b_t0, b_chi2, b_x0, b_x1;
    Py_ssize_t nc, nb, nph, lo, hi;
    double phase0, dphase, late_decay, x1_max;
    int one;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*nnnddddpnnw*w*w*", &b_off, &b_dt, &b_band,
                          &b_f, &b_w, &b_table, &b_z, &b_t0, &nc, &nb, &nph, &phase0,
                          &dphase, &late_decay, &x1_max, &one, &lo, &hi, &b_chi2, &b_x0,
                          &b_x1))
        return NULL;
    Grid g = {.table = b_table.buf, .nc = nc, .nb = nb, .nph = nph, .one = one,
              .phase0 = phase0,
              .dphase = dphase, .late_decay = late_decay, .x1_max = x1_max,
              .zgrid = b_z.buf, .t0 = b_t0.buf};
    g.nz = b_z.len / (Py_ssize_t)sizeof(double);
    g.nt = b_t0.len / (Py_ssize_t)sizeof(double) / (g.nz > 0 ? g.nz : 1);
    const int64_t *off = b_off.buf;
    const Py_ssize_t n_max = b_off.len / (Py_ssize_t)sizeof(int64_t) - 1;
    const Py_ssize_t d = (Py_ssize_t)sizeof(double), n_pts = b_dt.len / d;
    const Py_ssize_t per = g.nz * nc * g.nt;
    int ok = nph >= 2 && g.nz > 0 && g.nt > 0 && nc > 0 && nb > 0 && 0 <= lo && lo <= hi
             && hi <= n_max && isfinite(phase0) && dphase > 0.0
             && b_t0.len == d * g.nz * g.nt
             && b_table.len == d * 2 * g.nz * nc * nb * nph
             && b_band.len == (Py_ssize_t)sizeof(int64_t) * n_pts && b_f.len == d * n_pts
             && b_w.len == d * n_pts && off[n_max] <= n_pts
             && b_chi2.len >= d * hi * per && b_x0.len >= d * hi * per
             && b_x1.len >= d * hi * per;
    Py_ssize_t m = 0;
    const int64_t *band_in = b_band.buf;
    for (Py_ssize_t o = lo; ok && o < hi; o++) {
        if (off[o] < 0 || off[o + 1] < off[o]) ok = 0;
        else if (off[o + 1] - off[o] > m) m = off[o + 1] - off[o];
        for (Py_ssize_t k = off[o]; ok && k < off[o + 1]; k++)
            if (band_in[k] < 0 || band_in[k] >= nb) ok = 0;
    }
    Py_ssize_t *idx = NULL;
    double *work = NULL;
    if (ok) {
        idx = malloc(sizeof(Py_ssize_t) * (size_t)(m + 1));
        work = malloc(sizeof(double) * 2 * (size_t)(m + 1));
        ok = idx != NULL && work != NULL;
    }
    if (ok) {
        const double *dt = b_dt.buf, *f = b_f.buf, *w = b_w.buf;
        const int64_t *band = b_band.buf;
        double *chi2 = b_chi2.buf, *x0 = b_x0.buf, *x1 = b_x1.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t o = lo; o < hi; o++) {
            const Py_ssize_t a = off[o], n = off[o + 1] - off[o];
            for (Py_ssize_t iz = 0; iz < g.nz; iz++)
                for (Py_ssize_t it = 0; it < g.nt; it++) {
                    const Py_ssize_t at = o * per + iz * nc * g.nt + it;
                    fit_hypothesis(&g, iz, it, n, dt + a, band + a, f + a, w + a, idx, work,
                                   work + m + 1, chi2 + at, x0 + at, x1 + at, g.nt);
                }
        }
        Py_END_ALLOW_THREADS
    }
    free(idx);
    free(work);
    Py_buffer *all[] = {&b_off, &b_dt, &b_band, &b_f, &b_w, &b_table, &b_z, &b_t0,
                        &b_chi2, &b_x0, &b_x1};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) PyBuffer_Release(all[i]);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "_templatecore.fit_range: inconsistent arguments "
                                          "or out of memory");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"fit_range", fit_range, METH_VARARGS,
     "fit_range(offsets, dt, band, flux, weight, table, zgrid, t0, nc, nb, nph, phase0, "
     "dphase, late_decay, x1_max, one, lo, hi, chi2, x0, x1): fit light curves lo..hi-1 "
     "(one: the table's M1 is zero)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_templatecore",
                                    "Per-light-curve SALT2 grid-fit kernel of "
                                    "astrot2.templates.", -1, methods};

PyMODINIT_FUNC PyInit__templatecore(void) { return PyModule_Create(&module); }
