//! A query's online-softmax state, and the merge and normalisation shared by every
//! schedule.

/// A query's softmax state over some keys: the maximum score and the sum of
/// `exp(score - max)`, in eight lanes (the AVX2 tile's running sum; the portable tile
/// uses lane 0). `max` is -inf when no key was seen.
#[derive(Clone, Copy, Debug)]
pub(super) struct State {
    pub(super) max: f32,
    pub(super) sum: [f32; 8],
}

pub(super) const EMPTY: State = State {
    max: f32::NEG_INFINITY,
    sum: [0.0; 8],
};

/// Folds a chunk's partial state `(part, pacc)` into the running one `(run, acc)` (a
/// plain copy into an empty one). The one merge used by every schedule.
pub(super) fn merge(run: &mut State, acc: &mut [f32], part: &State, pacc: &[f32]) {
    if part.max == f32::NEG_INFINITY {
        return;
    }
    if run.max == f32::NEG_INFINITY {
        *run = *part;
        acc.copy_from_slice(pacc);
        return;
    }
    let m = run.max.max(part.max);
    let (fa, fb) = ((run.max - m).exp(), (part.max - m).exp());
    for (s, &p) in run.sum.iter_mut().zip(&part.sum) {
        *s = *s * fa + p * fb;
    }
    for (x, &y) in acc.iter_mut().zip(pacc) {
        *x = *x * fa + y * fb;
    }
    run.max = m;
}

/// Normalises `acc` by the state's sum (lanes added as ((0+4)+(2+6)) + ((1+5)+(3+7))).
pub(super) fn finish(state: &State, acc: &mut [f32]) {
    let s = &state.sum;
    let a = [s[0] + s[4], s[1] + s[5], s[2] + s[6], s[3] + s[7]];
    let total = (a[0] + a[2]) + (a[1] + a[3]);
    if total > 0.0 {
        let inv = 1.0 / total;
        acc.iter_mut().for_each(|x| *x *= inv);
    }
}
