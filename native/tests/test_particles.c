/* The particle-dynamics exports (fka_particle_flow_run_*, fka_two_stage_denoise_*, fka_two_stage_rule_horizon): against a
 * literal C reference of MATH.md sections 8 and 11 (double, materialised weights) on random cases in f32 and f64, with
 * pitches, sub-steps and blends; the depth-noise rule's value; and every error code with the argument named in
 * fka_last_error_message() and the particles untouched. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fka_test.h"

static int failures, passes;

static void expect(const char *what, fka_status got, fka_status want, const char *needle)
{
    const char *message = fka_last_error_message();
    int ok = got == want && (want == FKA_OK ? message[0] == '\0' : strstr(message, needle) != NULL);
    if (ok) { passes++; return; }
    failures++;
    printf("FAIL %s: got %s, want %s (need \"%s\" in \"%s\")\n", what, fka_status_string(got), fka_status_string(want),
        needle, message);
}

static void expect_near(const char *what, double got, double want, double tol)
{
    if (fabs(got - want) <= tol * (1 + fabs(want))) { passes++; return; }
    failures++;
    printf("FAIL %s: got %.12g, want %.12g (tol %g)\n", what, got, want, tol);
}

/* out_i = sum_j softmax_j(-|q_i - x_j|^2 / (2 h^2)) x_j for q [m x d], x [n x d], both packed; lse optional. */
static void ref_mean_shift(int m, int n, int d, const double *q, const double *x, double h, double *out, double *lse)
{
    double *s = malloc((size_t)n * sizeof(double));
    for (int i = 0; i < m; i++) {
        double mx = -INFINITY, l = 0;
        for (int j = 0; j < n; j++) {
            double dist = 0;
            for (int c = 0; c < d; c++) { double t = q[i * d + c] - x[j * d + c]; dist += t * t; }
            s[j] = -dist / (2 * h * h);
            if (s[j] > mx) mx = s[j];
        }
        for (int j = 0; j < n; j++) l += exp(s[j] - mx);
        for (int c = 0; c < d; c++) {
            double a = 0;
            for (int j = 0; j < n; j++) a += exp(s[j] - mx) * x[j * d + c];
            out[i * d + c] = a / l;
        }
        if (lse) lse[i] = mx + log(l);
    }
    free(s);
}

/* MATH 8 and 11: L steps of K sub-steps of dt/K, blended with the full step by beta; monitors per step. */
static void ref_flow(int n, int d, double *x, double h, double dt, int steps, int k, double beta, double *msd, double *energy)
{
    size_t size = (size_t)n * d * sizeof(double);
    double *mean = malloc(size), *start = malloc(size), *full = malloc(size), *lse = malloc((size_t)n * sizeof(double));
    for (int step = 0; step < steps; step++) {
        memcpy(start, x, size);
        for (int sub = 0; sub < k; sub++) {
            ref_mean_shift(n, n, d, x, x, h, mean, lse);
            if (sub == 0) {
                double e = 0;
                for (int i = 0; i < n; i++) e += lse[i];
                energy[step] = e / n - log((double)n);
                for (int i = 0; i < n * d; i++) full[i] = x[i] + dt * (mean[i] - x[i]);
            }
            for (int i = 0; i < n * d; i++) x[i] += dt / k * (mean[i] - x[i]);
        }
        if (beta > 0) for (int i = 0; i < n * d; i++) x[i] = beta * full[i] + (1 - beta) * x[i];
        double sq = 0;
        for (int i = 0; i < n * d; i++) sq += (x[i] - start[i]) * (x[i] - start[i]);
        msd[step] = sq / n;
    }
    free(mean); free(start); free(full); free(lse);
}

/* One random case through the f32 or f64 exports, with a row pitch of d + pad. */
static void particle_case(rng_t *rng, int precision)
{
    int n = (int)rng_int(rng, 1, 40), d = (int)rng_int(rng, 1, 5), steps = (int)rng_int(rng, 0, 4);
    int k = (int)rng_int(rng, 1, 3), pad = (int)rng_int(rng, 0, 3), pitch = d + pad;
    double h = rng_uniform(rng, 0.4, 2.0), dt = rng_uniform(rng, 0.02, 0.3), beta = rng_int(rng, 0, 1) ? 0.5 : 0;
    double sigma2 = rng_uniform(rng, 0.1, 1.0);
    double *y = malloc((size_t)n * d * sizeof(double)), *x = malloc((size_t)n * d * sizeof(double));
    double *denoised = malloc((size_t)n * d * sizeof(double));
    double msd[4], energy[4], got_msd[4], got_energy[4];
    for (int i = 0; i < n * d; i++) y[i] = x[i] = rng_uniform(rng, -2, 2);
    ref_flow(n, d, x, h, dt, steps, k, beta, msd, energy);
    ref_mean_shift(n, n, d, y, x, sqrt(sigma2), denoised, NULL); /* Stage 2: noisy queries, refined atoms */

    size_t len = (size_t)n * pitch;
    double tol = precision == 64 ? 1e-10 : 2e-4;
    char what[128];
    void *particles = malloc(len * (precision == 64 ? 8 : 4)), *noisy = malloc(len * (precision == 64 ? 8 : 4));
    void *out = malloc(len * (precision == 64 ? 8 : 4)), *refined = malloc(len * (precision == 64 ? 8 : 4));
    for (size_t i = 0; i < len; i++) {
        int row = (int)(i / pitch), col = (int)(i % pitch);
        double value = col < d ? y[row * d + col] : NAN; /* padding is NaN: it must never be read */
        if (precision == 64) { ((double *)particles)[i] = value; ((double *)noisy)[i] = value; }
        else { ((float *)particles)[i] = (float)value; ((float *)noisy)[i] = (float)value; }
    }
    fka_status s = precision == 64
        ? fka_particle_flow_run_f64(n, d, particles, pitch, h, dt, steps, k, beta, got_msd, got_energy)
        : fka_particle_flow_run_f32(n, d, particles, pitch, h, dt, steps, k, beta, got_msd, got_energy);
    snprintf(what, sizeof what, "f%d flow n=%d d=%d L=%d K=%d beta=%g pitch=%d", precision, n, d, steps, k, beta, pitch);
    expect(what, s, FKA_OK, "");
    s = precision == 64
        ? fka_two_stage_denoise_f64(n, d, noisy, pitch, sigma2, h, dt, steps, k, beta, out, pitch, refined, pitch)
        : fka_two_stage_denoise_f32(n, d, noisy, pitch, sigma2, h, dt, steps, k, beta, out, pitch, refined, pitch);
    expect(what, s, FKA_OK, "");
    double worst = 0, worst_out = 0, worst_refined = 0;
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < d; c++) {
            size_t at = (size_t)i * pitch + c;
            double p = precision == 64 ? ((double *)particles)[at] : ((float *)particles)[at];
            double o = precision == 64 ? ((double *)out)[at] : ((float *)out)[at];
            double r = precision == 64 ? ((double *)refined)[at] : ((float *)refined)[at];
            worst = fmax(worst, fabs(p - x[i * d + c]));
            worst_out = fmax(worst_out, fabs(o - denoised[i * d + c]));
            worst_refined = fmax(worst_refined, fabs(r - x[i * d + c]));
        }
    }
    expect_near(what, worst, 0, tol);
    expect_near(what, worst_out, 0, tol);
    expect_near(what, worst_refined, 0, tol);
    for (int l = 0; l < steps; l++) {
        expect_near(what, got_msd[l], msd[l], precision == 64 ? 1e-9 : 1e-3);
        expect_near(what, got_energy[l], energy[l], precision == 64 ? 1e-9 : 1e-4);
    }
    free(y); free(x); free(denoised); free(particles); free(noisy); free(out); free(refined);
}

static void errors(void)
{
    double p[6] = { 0, 1, 2, 3, 4, 5 }, o[6], r[6], msd[2], horizon = 0;
    float pf[6] = { 0, 1, 2, 3, 4, 5 };
    expect("flow NULL particles", fka_particle_flow_run_f64(3, 2, NULL, 0, 1, 0.1, 2, 1, 0, NULL, NULL), FKA_ERR_NULL_POINTER, "particles");
    expect("flow negative count", fka_particle_flow_run_f64(-1, 2, p, 0, 1, 0.1, 2, 1, 0, NULL, NULL), FKA_ERR_SHAPE, "particle_count");
    expect("flow zero dimension", fka_particle_flow_run_f64(3, 0, p, 0, 1, 0.1, 2, 1, 0, NULL, NULL), FKA_ERR_SHAPE, "dimension");
    expect("flow negative steps", fka_particle_flow_run_f64(3, 2, p, 0, 1, 0.1, -1, 1, 0, NULL, NULL), FKA_ERR_SHAPE, "step_count");
    expect("flow zero sub-steps", fka_particle_flow_run_f64(3, 2, p, 0, 1, 0.1, 2, 0, 0, NULL, NULL), FKA_ERR_SHAPE, "sub_steps");
    expect("flow small pitch", fka_particle_flow_run_f64(3, 2, p, 1, 1, 0.1, 2, 1, 0, NULL, NULL), FKA_ERR_SHAPE, "particles_pitch");
    expect("flow NaN bandwidth", fka_particle_flow_run_f64(3, 2, p, 0, NAN, 0.1, 2, 1, 0, NULL, NULL), FKA_ERR_ARGUMENT, "bandwidth");
    expect("flow zero step size", fka_particle_flow_run_f32(3, 2, pf, 0, 1, 0, 2, 1, 0, NULL, NULL), FKA_ERR_ARGUMENT, "step_size");
    expect("flow blend 2", fka_particle_flow_run_f64(3, 2, p, 0, 1, 0.1, 2, 1, 2, NULL, NULL), FKA_ERR_ARGUMENT, "blend");
    expect("flow monitor overlaps particles", fka_particle_flow_run_f64(3, 2, p, 0, 1, 0.1, 2, 1, 0, (double *)&p[4], NULL), FKA_ERR_ARGUMENT, "mean_squared_step");
    expect("flow huge count", fka_particle_flow_run_f64(INT64_C(1) << 32, 2, p, 0, 1, 0.1, 2, 1, 0, NULL, NULL), FKA_ERR_OVERFLOW, "particle_count");
    int untouched = 1;
    for (int i = 0; i < 6; i++) untouched &= p[i] == i && pf[i] == i;
    if (untouched) passes++; else { failures++; printf("FAIL particles changed by a failing call\n"); }
    expect("flow ok", fka_particle_flow_run_f64(3, 2, p, 0, 1, 0.1, 2, 1, 0, msd, NULL), FKA_OK, "");

    expect("denoise NULL output", fka_two_stage_denoise_f64(3, 2, p, 0, 0.5, 1, 0.1, 2, 1, 0, NULL, 0, NULL, 0), FKA_ERR_NULL_POINTER, "output");
    expect("denoise output overlaps input", fka_two_stage_denoise_f64(3, 2, p, 0, 0.5, 1, 0.1, 2, 1, 0, p, 0, NULL, 0), FKA_ERR_ARGUMENT, "output");
    expect("denoise refined overlaps output", fka_two_stage_denoise_f64(3, 2, p, 0, 0.5, 1, 0.1, 2, 1, 0, o, 0, o, 0), FKA_ERR_ARGUMENT, "refined_particles");
    expect("denoise zero variance", fka_two_stage_denoise_f64(3, 2, p, 0, 0, 1, 0.1, 2, 1, 0, o, 0, r, 0), FKA_ERR_ARGUMENT, "noise_variance");
    expect("denoise ok", fka_two_stage_denoise_f64(3, 2, p, 0, 0.5, 1, 0.1, 2, 1, 0, o, 0, r, 0), FKA_OK, "");

    expect("rule NULL", fka_two_stage_rule_horizon(0.5, 1, 1, NULL), FKA_ERR_NULL_POINTER, "horizon");
    expect("rule bad prior", fka_two_stage_rule_horizon(0.5, 1, 0, &horizon), FKA_ERR_ARGUMENT, "priorVariance");
    expect("rule ok", fka_two_stage_rule_horizon(0.5, 1, 1, &horizon), FKA_OK, "");
    expect_near("MATH 8 T* (tau2 = 1, sigma2 = 0.5, h = 1)", horizon, 0.452733, 1e-6);
    expect("rule infinite prior", fka_two_stage_rule_horizon(0.5, 1, INFINITY, &horizon), FKA_OK, "");
    expect_near("MATH 8 T* without the prior term", horizon, 0.25, 1e-15);
}

int main(void)
{
    rng_t rng = { UINT64_C(0x9E3779B97F4A7C15) };
    printf("fka %s, ISA path %d\n", fka_version_string(), fka_active_isa());
    errors();
    for (int i = 0; i < 60; i++) particle_case(&rng, i % 2 ? 64 : 32);
    printf("particles: %d checks passed, %d failed\n", passes, failures);
    return failures == 0 ? 0 : 1;
}
