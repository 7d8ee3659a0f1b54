//! Per-task error tables next to the published numbers, mean error and failed tasks.

use serde::{Deserialize, Serialize};

use super::tasks::TASK_NAMES;

/// A task is failed above this test error (the bAbI criterion: ≥ 95 % accuracy passes).
pub const FAIL_ABOVE: f64 = 0.05;

/// MemN2N, 1k, per task, 3 hops, PE LS RN (Sukhbaatar et al. 2015, Table 1): test error in %.
/// Mean 13.9, 11 failed.
pub const MEMN2N_1K: [f64; 20] = [
    0.0, 8.3, 40.3, 2.8, 13.1, 7.6, 17.3, 10.0, 13.2, 15.1, 0.9, 0.2, 0.4, 1.7, 0.0, 1.3, 51.0,
    11.1, 82.8, 0.0,
];

/// The LSTM baseline, 1k (Weston et al. 2015, as quoted in Sukhbaatar et al. 2015, Table 1): test
/// error in %. Mean 51.3, 20 failed.
pub const LSTM_1K: [f64; 20] = [
    50.0, 80.0, 80.0, 39.0, 30.0, 52.0, 51.0, 55.0, 36.0, 56.0, 38.0, 26.0, 6.0, 73.0, 79.0, 77.0,
    49.0, 48.0, 92.0, 9.0,
];

/// MemN2N, 10k, per task, 3 hops, PE LS RN (Sukhbaatar et al. 2015, appendix table): test error
/// in %. Mean 4.2, 3 failed.
pub const MEMN2N_10K: [f64; 20] = [
    0.0, 0.3, 2.1, 0.0, 0.8, 0.1, 2.0, 0.9, 0.3, 0.0, 0.0, 0.0, 0.0, 0.1, 0.0, 51.8, 18.6, 5.3,
    2.3, 0.0,
];

/// One task's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// 1 to 20.
    pub task: usize,
    /// Test error in [0, 1].
    pub test_error: f64,
    /// Training error of the kept run.
    pub train_error: f64,
    /// Validation error of the kept run.
    pub valid_error: f64,
    /// Which run was kept (lowest training error).
    pub run: usize,
    /// Seconds spent training (all runs) and testing.
    pub seconds: f64,
}

/// Mean test error in % and number of failed tasks.
pub fn summary(results: &[TaskResult]) -> (f64, usize) {
    let n = results.len().max(1) as f64;
    let mean = results.iter().map(|r| r.test_error).sum::<f64>() / n * 100.0;
    let failed = results.iter().filter(|r| r.test_error > FAIL_ABOVE).count();
    (mean, failed)
}

fn published_summary(table: &[f64; 20], tasks: &[usize]) -> (f64, usize) {
    let values: Vec<f64> = tasks.iter().map(|&t| table[t - 1]).collect();
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    (mean, values.iter().filter(|&&v| v > FAIL_ABOVE * 100.0).count())
}

/// A markdown table: task, our test error, the published MemN2N and LSTM errors (1k) or MemN2N
/// (10k), then the mean and the failed count over the tasks present.
pub fn markdown_table(results: &[TaskResult], ten_k: bool) -> String {
    let tasks: Vec<usize> = results.iter().map(|r| r.task).collect();
    let mut out = String::new();
    if ten_k {
        out.push_str("| task | ours | MemN2N 10k | train err | time |\n|---|---|---|---|---|\n");
    } else {
        out.push_str(
            "| task | ours | MemN2N 1k | LSTM 1k | train err | time |\n|---|---|---|---|---|---|\n",
        );
    }
    for r in results {
        let name = TASK_NAMES.get(r.task.wrapping_sub(1)).copied().unwrap_or("?");
        let ours = format!("{:.1}", r.test_error * 100.0);
        let ours = if r.test_error > FAIL_ABOVE { ours } else { format!("**{ours}**") };
        let published = if ten_k {
            format!("{:.1}", MEMN2N_10K[r.task - 1])
        } else {
            format!("{:.1} | {:.0}", MEMN2N_1K[r.task - 1], LSTM_1K[r.task - 1])
        };
        out.push_str(&format!(
            "| {} {} | {} | {} | {:.1} | {:.0} s |\n",
            r.task,
            name,
            ours,
            published,
            r.train_error * 100.0,
            r.seconds
        ));
    }
    let (mean, failed) = summary(results);
    let total: f64 = results.iter().map(|r| r.seconds).sum();
    if ten_k {
        let (m, f) = published_summary(&MEMN2N_10K, &tasks);
        out.push_str(&format!("| **mean** | {mean:.1} | {m:.1} | | {total:.0} s |\n"));
        out.push_str(&format!("| **failed (> 5 %)** | {failed} | {f} | | |\n"));
    } else {
        let (m, f) = published_summary(&MEMN2N_1K, &tasks);
        let (lm, lf) = published_summary(&LSTM_1K, &tasks);
        out.push_str(&format!("| **mean** | {mean:.1} | {m:.1} | {lm:.1} | | {total:.0} s |\n"));
        out.push_str(&format!("| **failed (> 5 %)** | {failed} | {f} | {lf} | | |\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_tables_match_the_papers_summaries() {
        let all: Vec<usize> = (1..=20).collect();
        let (m, f) = published_summary(&MEMN2N_1K, &all);
        assert!((m - 13.9).abs() < 0.05 && f == 11, "{m} {f}");
        let (m, f) = published_summary(&LSTM_1K, &all);
        assert!((m - 51.3).abs() < 0.05 && f == 20, "{m} {f}");
        let (m, f) = published_summary(&MEMN2N_10K, &all);
        assert!((m - 4.2).abs() < 0.05 && f == 3, "{m} {f}");
    }

    #[test]
    fn summary_counts_tasks_above_five_percent() {
        let r = |task, test_error| TaskResult {
            task,
            test_error,
            train_error: 0.0,
            valid_error: 0.0,
            run: 0,
            seconds: 1.0,
        };
        let results = [r(1, 0.0), r(2, 0.05), r(3, 0.5)];
        let (mean, failed) = summary(&results);
        assert!((mean - 18.333).abs() < 1e-2 && failed == 1);
        let table = markdown_table(&results, false);
        assert!(table.contains("| 3 three-supporting-facts | 50.0 | 40.3 | 80 |"), "{table}");
        assert!(table.contains("**0.0**"), "{table}");
    }
}
