//! `.npz` statistics files: numpy reads ours, we read numpy's (pytorch-fid layout).

mod common;

use common::{correlated_rows, read_f64, run_py, write_f64};
use pagan_shared::{FeatureStats, Gaussian, StatsError, read_stats_npz, write_stats_npz};

fn sample_gaussian(d: usize, n: usize) -> Gaussian {
    let mut s = FeatureStats::new(d).expect("dim");
    s.add_rows(&correlated_rows(8, n, d, 1.0, 1.0), n).expect("rows");
    s.finalize().expect("finalize")
}

#[test]
fn numpy_loads_our_file_and_we_roundtrip_it() {
    let d = 32;
    let g = sample_gaussian(d, 500);
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    write_stats_npz(&p.join("ours.npz"), &g, Some("tf1-bilinear")).expect("write");
    write_f64(&p.join("mu.bin"), &g.mu);
    write_f64(&p.join("sigma.bin"), &g.sigma);
    let out = run_py(
        p,
        &format!(
            r#"
import numpy as np
f = np.load('ours.npz', allow_pickle=False)
assert sorted(f.files) == ['mu', 'n', 'resize_mode', 'sigma'], f.files
mu, sigma = f['mu'], f['sigma']
assert mu.dtype == np.float64 and mu.shape == ({d},), (mu.dtype, mu.shape)
assert sigma.dtype == np.float64 and sigma.shape == ({d}, {d}), (sigma.dtype, sigma.shape)
assert np.array_equal(mu, np.fromfile('mu.bin', '<f8'))
assert np.array_equal(sigma, np.fromfile('sigma.bin', '<f8').reshape({d}, {d}))
assert f['n'].dtype == np.int64 and int(f['n']) == 500, f['n']
assert str(f['resize_mode']) == 'tf1-bilinear', repr(f['resize_mode'])
print('ok')
"#
        ),
    );
    assert_eq!(out.trim(), "ok");

    let back = read_stats_npz(&p.join("ours.npz")).expect("read back");
    assert_eq!(back.gaussian, g);
    assert_eq!(back.resize_mode.as_deref(), Some("tf1-bilinear"));

    // Without n and resize mode only the pytorch-fid keys are written.
    let bare = Gaussian::new(g.mu.clone(), g.sigma.clone(), None).expect("bare");
    write_stats_npz(&p.join("bare.npz"), &bare, None).expect("write");
    let back = read_stats_npz(&p.join("bare.npz")).expect("read");
    assert_eq!(back.gaussian.n, None);
    assert_eq!(back.resize_mode, None);
}

#[test]
fn we_load_numpy_written_files() {
    let d = 24;
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    run_py(
        p,
        &format!(
            r#"
import numpy as np
rng = np.random.default_rng(0)
a = rng.standard_normal(({d}, 3 * {d}))
sigma = a @ a.T / (3 * {d})
sigma = (sigma + sigma.T) / 2
mu = rng.standard_normal({d})
# pytorch-fid style, float32, mu/sigma only
np.savez('f32.npz', mu=mu.astype(np.float32), sigma=sigma.astype(np.float32))
mu.astype(np.float32).astype(np.float64).tofile('mu32.bin')
sigma.astype(np.float32).astype(np.float64).tofile('sigma32.bin')
# compressed, float64, Fortran-ordered sigma, uint8-encoded resize mode, n as [1]
np.savez_compressed('f64.npz', mu=mu, sigma=np.asfortranarray(sigma),
                    n=np.array([1234], dtype=np.int64),
                    resize_mode=np.frombuffer(b'torch-bilinear', dtype=np.uint8))
mu.tofile('mu64.bin'); sigma.tofile('sigma64.bin')
"#
        ),
    );
    let f32_file = read_stats_npz(&p.join("f32.npz")).expect("float32 npz");
    assert_eq!(f32_file.gaussian.mu, read_f64(&p.join("mu32.bin")));
    assert_eq!(f32_file.gaussian.sigma, read_f64(&p.join("sigma32.bin")));
    assert_eq!(f32_file.gaussian.n, None);
    assert_eq!(f32_file.resize_mode, None);

    let f64_file = read_stats_npz(&p.join("f64.npz")).expect("compressed float64 npz");
    assert_eq!(f64_file.gaussian.mu, read_f64(&p.join("mu64.bin")));
    assert_eq!(f64_file.gaussian.sigma, read_f64(&p.join("sigma64.bin")));
    assert_eq!(f64_file.gaussian.n, Some(1234));
    assert_eq!(f64_file.resize_mode.as_deref(), Some("torch-bilinear"));
}

#[test]
fn invalid_files_are_rejected_with_the_file_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    run_py(
        p,
        r#"
import numpy as np
s = np.eye(4)
s_nan = s.copy(); s_nan[1, 2] = np.nan
np.savez('nan_sigma.npz', mu=np.zeros(4), sigma=s_nan)
np.savez('inf_mu.npz', mu=np.array([0, np.inf, 0, 0.]), sigma=s)
np.savez('not_square.npz', mu=np.zeros(4), sigma=np.zeros((4, 3)))
np.savez('dim_mismatch.npz', mu=np.zeros(5), sigma=s)
np.savez('no_sigma.npz', mu=np.zeros(4))
a = s.copy(); a[0, 3] = 0.5
np.savez('asymmetric.npz', mu=np.zeros(4), sigma=a)
np.save('plain.npy', s)
np.savez('negative_variance.npz', mu=np.zeros(4), sigma=-np.eye(4))
ind = np.eye(4); ind[0, 1] = ind[1, 0] = 2.0
np.savez('indefinite.npz', mu=np.zeros(4), sigma=ind)
v = np.arange(1.0, 5.0)
np.savez('rank_one.npz', mu=np.zeros(4), sigma=np.outer(v, v))
"#,
    );
    let cases = [
        ("nan_sigma.npz", "NaN"),
        ("inf_mu.npz", "inf"),
        ("not_square.npz", "square"),
        ("dim_mismatch.npz", "square"),
        ("no_sigma.npz", "missing key 'sigma'"),
        ("asymmetric.npz", "not symmetric"),
        ("plain.npy", "not a readable .npz"),
        ("negative_variance.npz", "negative variance"),
        ("indefinite.npz", "negative eigenvalue"),
        ("does_not_exist.npz", "No such file"),
    ];
    for (name, needle) in cases {
        let err: StatsError = read_stats_npz(&p.join(name)).expect_err(name);
        let msg = err.to_string();
        assert!(msg.contains(name), "{name}: message lacks the file name: {msg}");
        assert!(msg.contains(needle), "{name}: expected '{needle}' in: {msg}");
    }
    // Positive semi-definite but singular (what few samples give) is a covariance.
    let g = read_stats_npz(&p.join("rank_one.npz")).expect("a rank-one covariance loads");
    assert_eq!(g.gaussian.sigma[3 * 4 + 3], 16.0);
}
