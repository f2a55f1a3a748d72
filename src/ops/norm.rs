//! RMSNorm, computed as ggml does: the mean of squares accumulated in f64, the scale
//! `1 / sqrt(mean + eps)` in f32, then `(x * scale) * w`.

/// Normalizes each row of `x` (rows of `w.len()` values) into `out`.
pub fn rmsnorm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let d = w.len();
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let scale = rms_scale(xr, eps);
        for ((o, &v), &g) in or.iter_mut().zip(xr).zip(w) {
            *o = (v * scale) * g;
        }
    }
}

/// Normalizes each row of `x` (rows of `w.len()` values) in place.
pub fn rmsnorm_in_place(x: &mut [f32], w: &[f32], eps: f32) {
    let d = w.len();
    for xr in x.chunks_exact_mut(d) {
        let scale = rms_scale(xr, eps);
        for (v, &g) in xr.iter_mut().zip(w) {
            *v = (*v * scale) * g;
        }
    }
}

/// `1 / sqrt(mean(x²) + eps)`, the factor a row is normalized by.
#[inline]
pub fn rms_scale(x: &[f32], eps: f32) -> f32 {
    let sum: f64 = x.iter().map(|&v| (v * v) as f64).sum();
    let mean = (sum / x.len() as f64) as f32;
    1.0 / (mean + eps).sqrt()
}

/// LayerNorm of each row of `x` (rows of `w.len()` values) in place, as ggml computes it:
/// mean and variance accumulated in f64, `(x - mean) / sqrt(var + eps)` in f32, then
/// `* w + b`.
pub fn layernorm_in_place(x: &mut [f32], w: &[f32], b: &[f32], eps: f32) {
    let d = w.len();
    for xr in x.chunks_exact_mut(d) {
        let mean = (xr.iter().map(|&v| v as f64).sum::<f64>() / d as f64) as f32;
        let mut var = 0.0f64;
        for v in xr.iter_mut() {
            *v -= mean;
            var += (*v * *v) as f64;
        }
        let scale = 1.0 / ((var / d as f64) as f32 + eps).sqrt();
        for ((v, &g), &c) in xr.iter_mut().zip(w).zip(b) {
            *v = (*v * scale) * g + c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_rms_after_norm() {
        let x = [3.0f32, -4.0, 0.0, 5.0];
        let mut out = [0.0; 4];
        rmsnorm(&x, &[1.0; 4], 0.0, &mut out);
        let rms = (out.iter().map(|v| v * v).sum::<f32>() / 4.0).sqrt();
        assert!((rms - 1.0).abs() < 1e-6);
        let mut y = x;
        rmsnorm_in_place(&mut y, &[2.0; 4], 0.0);
        assert_eq!(y.map(|v| v / 2.0), out);
    }

    #[test]
    fn layernorm_centres_and_scales() {
        let mut x = [1.0f32, 2.0, 3.0, 6.0];
        layernorm_in_place(&mut x, &[1.0; 4], &[0.0; 4], 0.0);
        let mean = x.iter().sum::<f32>() / 4.0;
        let var = x.iter().map(|v| v * v).sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5, "{x:?}");
        let mut y = [1.0f32, 2.0, 3.0, 6.0];
        layernorm_in_place(&mut y, &[2.0; 4], &[0.5; 4], 0.0);
        for (a, b) in x.iter().zip(&y) {
            assert!((a * 2.0 + 0.5 - b).abs() < 1e-6);
        }
    }
}
