//! Tests of the distance kernels against brute force, and their properties.

use proptest::prelude::*;

use super::*;
use crate::Error;
use crate::reference::{Rng, assert_close, brute_force};

const COSTS: [Cost; 4] = [Cost::SquaredEuclidean, Cost::Euclidean, Cost::Absolute, Cost::Cosine];

fn windows() -> Vec<Window> {
    vec![
        Window::Full,
        Window::SakoeChiba { radius: 0 },
        Window::SakoeChiba { radius: 1 },
        Window::SakoeChiba { radius: 2 },
        Window::Itakura { max_slope: 1.0 },
        Window::Itakura { max_slope: 1.5 },
        Window::Itakura { max_slope: 2.0 },
        Window::Itakura { max_slope: 3.0 },
    ]
}

#[test]
fn matches_brute_force_for_every_cost_window_and_dimension() {
    let mut rng = Rng::new(7);
    for case in 0..400 {
        let dim = 1 + case % 2;
        let (n, m) = (1 + rng.below(6), 1 + rng.below(6));
        let a = rng.series(n * dim);
        let b = rng.series(m * dim);
        let (sa, sb) = (Series::new(&a, dim).unwrap(), Series::new(&b, dim).unwrap());
        for cost in COSTS {
            for window in windows() {
                let options = DtwOptions { cost, window };
                let what = format!("n={n} m={m} dim={dim} {options:?}");
                match (brute_force(&a, &b, dim, cost, &window), dtw_cost(sa, sb, &options)) {
                    (Some((expected, _)), Ok(got)) => {
                        assert_close(got, expected, 1e-12, &what);
                        let a32: Vec<f32> = a.iter().map(|&x| x as f32).collect();
                        let b32: Vec<f32> = b.iter().map(|&x| x as f32).collect();
                        let (s32a, s32b) =
                            (Series::new(&a32, dim).unwrap(), Series::new(&b32, dim).unwrap());
                        let got32 = dtw_cost(s32a, s32b, &options).unwrap();
                        assert_close(got32 as f64, expected, 1e-5, &what);
                        // Just below the cost abandons, at the cost does not.
                        assert_eq!(dtw_cost_bounded(sa, sb, &options, got).unwrap(), Some(got));
                        if got > 0.0 {
                            let below = got * (1.0 - 1e-9);
                            assert_eq!(dtw_cost_bounded(sa, sb, &options, below).unwrap(), None);
                        }
                    }
                    (None, Err(Error::Unreachable { n: en, m: em, .. })) => {
                        assert_eq!((en, em), (n, m), "{what}");
                    }
                    (expected, got) => panic!("{what}: reference {expected:?}, got {got:?}"),
                }
            }
        }
    }
}

#[test]
fn hand_computed_values_follow_the_documented_conventions() {
    // Path (0,0),(1,0): (0-1)² + (2-1)² = 2.
    let options = DtwOptions::default();
    assert_eq!(dtw_cost(&[0.0, 2.0], &[1.0], &options), Ok(2.0));
    assert_eq!(dtw_distance(&[0.0, 2.0], &[1.0], &options), Ok(2.0_f64.sqrt()));
    let abs = options.with_cost(Cost::Absolute);
    assert_eq!(dtw_distance(&[0.0, 2.0], &[1.0], &abs), Ok(2.0));
    // A repeated point costs nothing: DTW absorbs it.
    assert_eq!(dtw_cost(&[0.0, 1.0, 2.0, 1.0], &[0.0, 0.0, 1.0, 2.0, 1.0], &options), Ok(0.0));
}

#[test]
fn fast_kernel_is_bit_identical_to_the_row_kernel() {
    let mut rng = Rng::new(11);
    let (a, b) = (rng.walk(300), rng.walk(217));
    for cost in [Cost::SquaredEuclidean, Cost::Absolute] {
        for window in
            [Window::Full, Window::SakoeChiba { radius: 7 }, Window::Itakura { max_slope: 2.0 }]
        {
            let band = Band::new(&window, a.len(), b.len()).unwrap();
            let rows = rows_general(Series::from(&a), Series::from(&b), cost, &band, f64::INFINITY);
            let fast = dtw_cost(&a, &b, &DtwOptions { cost, window }).unwrap();
            assert_eq!(rows, Some(fast), "{cost:?} {window:?}");
            let swapped = dtw_cost(&b, &a, &DtwOptions { cost, window }).unwrap();
            assert_close(swapped, fast, 1e-12, "swapped");
        }
    }
}

#[test]
fn fast_kernel_is_bit_identical_on_random_lengths_and_bands() {
    // Pairs of diagonals cover the union of two runs and repair the edges: every way the runs
    // can start, end, and be empty (Itakura with slope 1 leaves every other diagonal empty),
    // odd and even diagonal counts, and lengths across the strip boundary.
    let mut rng = Rng::new(13);
    for case in 0..120 {
        let (n, m) = if case % 10 == 9 {
            (500 + rng.below(100), 500 + rng.below(100))
        } else {
            (1 + rng.below(70), 1 + rng.below(70))
        };
        let (a, b) = (rng.walk(n), rng.walk(m));
        let radius = rng.below(12);
        for window in [
            Window::Full,
            Window::SakoeChiba { radius },
            Window::Itakura { max_slope: 1.0 },
            Window::Itakura { max_slope: 1.0 + rng.below(30) as f64 / 10.0 },
        ] {
            let Ok(band) = Band::new(&window, n, m) else { continue };
            for cost in [Cost::SquaredEuclidean, Cost::Absolute] {
                let what = format!("n={n} m={m} {window:?} {cost:?}");
                let rows =
                    rows_general(Series::from(&a), Series::from(&b), cost, &band, f64::INFINITY);
                let abs = cost == Cost::Absolute;
                let fast = diagonal::diagonal_cost(&a, &b, &band, abs, f64::INFINITY);
                assert_eq!(fast, rows, "{what}");
                let (a32, b32): (Vec<f32>, Vec<f32>) =
                    (a.iter().map(|&x| x as f32).collect(), b.iter().map(|&x| x as f32).collect());
                let rows32 = rows_general(
                    Series::from(&a32),
                    Series::from(&b32),
                    cost,
                    &band,
                    f32::INFINITY,
                );
                let fast32 = diagonal::diagonal_cost(&a32, &b32, &band, abs, f32::INFINITY);
                assert_eq!(fast32, rows32, "f32 {what}");
            }
        }
    }
}

#[test]
fn fast_kernel_strips_join_exactly_on_long_series() {
    // Longer than one strip of the anti-diagonal kernel, in both orientations.
    let mut rng = Rng::new(12);
    let (a, b) = (rng.walk(1100), rng.walk(1300));
    for window in
        [Window::Full, Window::SakoeChiba { radius: 30 }, Window::Itakura { max_slope: 1.5 }]
    {
        let options = DtwOptions { cost: Cost::SquaredEuclidean, window };
        let band = Band::new(&window, a.len(), b.len()).unwrap();
        let rows =
            rows_general(Series::from(&a), Series::from(&b), options.cost, &band, f64::INFINITY);
        assert_eq!(rows, Some(dtw_cost(&a, &b, &options).unwrap()), "{window:?}");
        let band = Band::new(&window, b.len(), a.len()).unwrap();
        let rows =
            rows_general(Series::from(&b), Series::from(&a), options.cost, &band, f64::INFINITY);
        assert_eq!(rows, Some(dtw_cost(&b, &a, &options).unwrap()), "{window:?} swapped");
        let exact = rows.unwrap_or(f64::INFINITY);
        assert_eq!(dtw_cost_bounded(&a, &b, &options, exact * 0.5).unwrap(), None);
        assert_eq!(dtw_cost_bounded(&a, &b, &options, exact).unwrap(), Some(exact));
    }
}

#[test]
fn window_zero_on_equal_lengths_is_the_euclidean_distance() {
    let mut rng = Rng::new(3);
    let (a, b) = (rng.series(50), rng.series(50));
    let euclid = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt();
    let options = DtwOptions::default().with_window(Window::SakoeChiba { radius: 0 });
    assert_close(dtw_distance(&a, &b, &options).unwrap(), euclid, 1e-12, "euclidean");
}

#[test]
fn data_errors_carry_the_offending_values() {
    let options = DtwOptions::default();
    let empty: [f64; 0] = [];
    assert_eq!(
        dtw_cost(&empty, &[1.0], &options),
        Err(Error::Empty { which: "first series".into() })
    );
    let err = dtw_cost(&[1.0, 2.0], &[0.0, f64::INFINITY, 1.0], &options).unwrap_err();
    assert_eq!(
        err.to_string(),
        "second series has the non-finite value inf at index 1 (flat index into its data)"
    );
    let a = [1.0, 2.0, 3.0, 4.0];
    let err = dtw_cost(Series::new(&a, 2).unwrap(), &[1.0, 2.0], &options).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dimension mismatch: first series has points of dimension 2, second series of dimension 1"
    );
    let itakura = options.with_window(Window::Itakura { max_slope: 2.0 });
    let err = dtw_cost(&[1.0; 3], &[1.0; 10], &itakura).unwrap_err();
    assert!(matches!(err, Error::Unreachable { n: 3, m: 10, .. }), "{err}");
}

fn series_pair() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    (1usize..40, 1usize..40).prop_flat_map(|(n, m)| {
        (prop::collection::vec(-10.0..10.0f64, n), prop::collection::vec(-10.0..10.0f64, m))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, rng_seed: proptest::test_runner::RngSeed::Fixed(17), ..ProptestConfig::default() })]

    #[test]
    fn distance_to_itself_is_zero(x in prop::collection::vec(-10.0..10.0f64, 1..60), r in 0usize..5) {
        for cost in COSTS {
            for window in [Window::Full, Window::SakoeChiba { radius: r }, Window::Itakura { max_slope: 2.0 }] {
                let d = dtw_cost(&x, &x, &DtwOptions { cost, window }).unwrap();
                prop_assert!(d.abs() < 1e-12, "{cost:?} {window:?}: {d}");
            }
        }
    }

    #[test]
    fn every_cost_is_symmetric((a, b) in series_pair(), r in 0usize..5) {
        for cost in COSTS {
            let options = DtwOptions { cost, window: Window::SakoeChiba { radius: r } };
            let (ab, ba) = (dtw_cost(&a, &b, &options).unwrap(), dtw_cost(&b, &a, &options).unwrap());
            prop_assert!((ab - ba).abs() <= 1e-9 * (1.0 + ab), "{cost:?}: {ab} vs {ba}");
        }
    }

    #[test]
    fn banded_is_never_below_full((a, b) in series_pair(), r in 0usize..8) {
        for cost in COSTS {
            let full = dtw_cost(&a, &b, &DtwOptions { cost, window: Window::Full }).unwrap();
            let band = dtw_cost(&a, &b, &DtwOptions { cost, window: Window::SakoeChiba { radius: r } }).unwrap();
            prop_assert!(band >= full - 1e-12 * (1.0 + full), "{cost:?}: band {band} < full {full}");
        }
    }

    #[test]
    fn early_abandoning_keeps_every_result_within_the_bound((a, b) in series_pair(), frac in 0.0..2.0f64) {
        for cost in COSTS {
            let options = DtwOptions { cost, window: Window::Full };
            let exact = dtw_cost(&a, &b, &options).unwrap();
            let bound = exact * frac;
            let bounded = dtw_cost_bounded(&a, &b, &options, bound).unwrap();
            prop_assert_eq!(bounded, (exact <= bound).then_some(exact));
        }
    }

    #[test]
    fn f32_agrees_with_f64((a, b) in series_pair()) {
        let (a32, b32): (Vec<f32>, Vec<f32>) =
            (a.iter().map(|&x| x as f32).collect(), b.iter().map(|&x| x as f32).collect());
        for cost in COSTS {
            let options = DtwOptions { cost, window: Window::Full };
            let d64 = dtw_cost(&a, &b, &options).unwrap();
            let d32 = dtw_cost(&a32, &b32, &options).unwrap() as f64;
            prop_assert!((d32 - d64).abs() <= 1e-4 * (1.0 + d64), "{cost:?}: {d32} vs {d64}");
        }
    }
}
