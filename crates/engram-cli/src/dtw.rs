//! `engram dtw`: dynamic time warping on series from files or stdin.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use engram_dtw::{
    Cost, DtwOptions, SearchOptions, SeriesSet, Window, classify_1nn, distance_matrix, dtw_cost,
    dtw_path, error_rate, parse_series, read_series, select_window, subsequence_search,
};
use serde_json::json;

use crate::Failure;

mod plot;

/// Dynamic time warping between series (one series per line; values separated by tabs, commas
/// or spaces).
#[derive(Debug, Args)]
pub(crate) struct DtwArgs {
    #[command(subcommand)]
    command: DtwCommand,
}

#[derive(Debug, Subcommand)]
enum DtwCommand {
    /// DTW distance between two series.
    Distance(PairArgs),
    /// The optimal warping path between two series.
    Path(PairArgs),
    /// Pairwise DTW distances between all series of the inputs.
    Matrix(MatrixArgs),
    /// 1-nearest-neighbour classification as in the UCR archive (window learned by
    /// leave-one-out on the training set unless given).
    Knn(KnnArgs),
    /// Best z-normalised matches of a query inside a long series (UCR suite): prints the start
    /// position and the distance (6 decimals) of each match.
    Search(SearchArgs),
    /// Draws the accumulated-cost heatmap with the warping path, or the two series with the
    /// alignment between them, as SVG or PNG.
    Plot(plot::PlotArgs),
}

#[derive(Debug, Args)]
struct Inputs {
    /// Files with one series per line; `-` (or no file) reads stdin.
    files: Vec<PathBuf>,
    /// The first field of each line is a label (UCR archive files).
    #[arg(long)]
    labelled: bool,
}

#[derive(Debug, Args)]
struct Pick {
    /// Compare the series at these two 0-based positions among all series read (rows of a UCR
    /// file, say), instead of needing exactly two.
    #[arg(long, value_name = "I,J", value_parser = parse_rows)]
    rows: Option<[usize; 2]>,
}

#[derive(Debug, Args)]
struct Compare {
    /// Warping window: `full`, a Sakoe-Chiba radius (`10`), a percentage of the longer series
    /// (`10%`, rounded up as the UCR archive does), or an Itakura parallelogram (`itakura:2`).
    #[arg(long, default_value = "full", value_parser = parse_window)]
    window: WindowSpec,
    /// Local cost between points.
    #[arg(long, value_enum, default_value_t = Metric::Sqeuclidean)]
    metric: Metric,
}

#[derive(Debug, Args)]
struct PairArgs {
    #[command(flatten)]
    inputs: Inputs,
    #[command(flatten)]
    pick: Pick,
    #[command(flatten)]
    compare: Compare,
}

#[derive(Debug, Args)]
struct MatrixArgs {
    #[command(flatten)]
    inputs: Inputs,
    #[command(flatten)]
    compare: Compare,
    /// Threads to use (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

#[derive(Debug, Args)]
struct KnnArgs {
    /// Training series, labelled (UCR `*_TRAIN.tsv`).
    #[arg(long)]
    train: PathBuf,
    /// Test series, labelled (UCR `*_TEST.tsv`).
    #[arg(long)]
    test: PathBuf,
    /// Warping window; learned by leave-one-out over 0..=100 % when not given.
    #[arg(long, value_parser = parse_window)]
    window: Option<WindowSpec>,
    /// Local cost between points.
    #[arg(long, value_enum, default_value_t = Metric::Sqeuclidean)]
    metric: Metric,
    /// Threads to use (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

#[derive(Debug, Args)]
struct SearchArgs {
    /// File whose first series is the query.
    #[arg(long)]
    query: PathBuf,
    /// File whose first series is searched.
    #[arg(long)]
    data: PathBuf,
    /// Sakoe-Chiba radius, in points of the query.
    #[arg(long, default_value_t = 0)]
    radius: usize,
    /// How many non-overlapping matches to report.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    top: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Metric {
    /// Squared difference (dtaidistance, tslearn; the distance is the root of the sum).
    Sqeuclidean,
    /// Euclidean distance between points.
    Euclidean,
    /// Absolute difference (L1).
    Abs,
    /// One minus the cosine similarity.
    Cosine,
}

impl Metric {
    fn cost(self) -> Cost {
        match self {
            Metric::Sqeuclidean => Cost::SquaredEuclidean,
            Metric::Euclidean => Cost::Euclidean,
            Metric::Abs => Cost::Absolute,
            Metric::Cosine => Cost::Cosine,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum WindowSpec {
    Full,
    Radius(usize),
    Percent(u32),
    Itakura(f64),
}

fn parse_window(text: &str) -> Result<WindowSpec, String> {
    let bad = || {
        format!(
            "`{text}` is not a window: use `full`, a radius (`10`), a percentage (`10%`) or `itakura:SLOPE`"
        )
    };
    if text == "full" {
        Ok(WindowSpec::Full)
    } else if let Some(percent) = text.strip_suffix('%') {
        match percent.parse::<u32>() {
            Ok(p) if p <= 100 => Ok(WindowSpec::Percent(p)),
            _ => Err(bad()),
        }
    } else if let Some(slope) = text.strip_prefix("itakura:") {
        match slope.parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 1.0 => Ok(WindowSpec::Itakura(s)),
            _ => Err(format!("itakura slope must be a number of at least 1, got `{slope}`")),
        }
    } else {
        text.parse::<usize>().map(WindowSpec::Radius).map_err(|_| bad())
    }
}

fn parse_rows(text: &str) -> Result<[usize; 2], String> {
    let parsed = text.split_once(',').map(|(i, j)| (i.trim().parse(), j.trim().parse()));
    match parsed {
        Some((Ok(i), Ok(j))) => Ok([i, j]),
        _ => Err(format!("`{text}` is not two row numbers: use `I,J`, say `0,1`")),
    }
}

/// The window as a title says it.
fn describe_window(window: Window) -> String {
    match window {
        Window::SakoeChiba { radius } => format!("radius {radius}"),
        Window::Itakura { max_slope } => format!("itakura {max_slope}"),
        Window::Full => "full".to_string(),
    }
}

impl WindowSpec {
    /// The window for series of at most `len` points.
    fn resolve(self, len: usize) -> anyhow::Result<Window> {
        Ok(match self {
            WindowSpec::Full => Window::Full,
            WindowSpec::Radius(radius) => Window::SakoeChiba { radius },
            WindowSpec::Percent(p) => Window::percent(p, len)?,
            WindowSpec::Itakura(max_slope) => Window::Itakura { max_slope },
        })
    }
}

pub(crate) fn run(args: DtwArgs, json: bool) -> Result<(), Failure> {
    let result = match args.command {
        DtwCommand::Distance(args) => distance(args, json, false),
        DtwCommand::Path(args) => distance(args, json, true),
        DtwCommand::Matrix(args) => matrix(args, json),
        DtwCommand::Knn(args) => knn(args, json),
        DtwCommand::Search(args) => search(args, json),
        DtwCommand::Plot(args) => plot::run(args, json),
    };
    result.map_err(Failure::Runtime)
}

/// Every series of the inputs, in order.
fn read_inputs(inputs: &Inputs) -> anyhow::Result<SeriesSet> {
    let stdin_only = [PathBuf::from("-")];
    let files = if inputs.files.is_empty() { &stdin_only[..] } else { &inputs.files[..] };
    let mut all = SeriesSet { series: Vec::new(), labels: inputs.labelled.then(Vec::new) };
    for file in files {
        let set = if file.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("cannot read stdin")?;
            parse_series(&text, "<stdin>", inputs.labelled)?
        } else {
            read_series(file, inputs.labelled)?
        };
        all.series.extend(set.series);
        if let (Some(all), Some(labels)) = (&mut all.labels, set.labels) {
            all.extend(labels);
        }
    }
    Ok(all)
}

/// The two series to compare, and what to call them: the ones `--rows` picks (named by row,
/// with their labels), else the only two.
fn pick_pair<'s>(
    set: &'s SeriesSet,
    pick: &Pick,
) -> anyhow::Result<(&'s [f64], &'s [f64], [String; 2])> {
    let Some(rows) = pick.rows else {
        let [a, b] = &set.series[..] else {
            bail!("need exactly two series, got {} (one per non-blank line)", set.len());
        };
        return Ok((a, b, ["x".to_string(), "y".to_string()]));
    };
    if let Some(&row) = rows.iter().find(|&&row| row >= set.len()) {
        bail!(
            "--rows {},{}: there is no row {row}, the inputs hold {} series",
            rows[0],
            rows[1],
            set.len()
        );
    }
    let name = |row: usize| match &set.labels {
        Some(labels) => format!("row {row} (class {})", labels[row]),
        None => format!("row {row}"),
    };
    Ok((&set.series[rows[0]], &set.series[rows[1]], [name(rows[0]), name(rows[1])]))
}

fn longest(series: &[Vec<f64>]) -> usize {
    series.iter().map(Vec::len).max().unwrap_or(0)
}

fn distance(args: PairArgs, json: bool, with_path: bool) -> anyhow::Result<()> {
    let set = read_inputs(&args.inputs)?;
    let (a, b, _) = pick_pair(&set, &args.pick)?;
    let window = args.compare.window.resolve(a.len().max(b.len()))?;
    let options = DtwOptions::new().with_cost(args.compare.metric.cost()).with_window(window);
    let cost = dtw_cost(a, b, &options)?;
    let distance = options.cost_to_distance(cost);
    let path = if with_path { Some(dtw_path(a, b, &options)?.path) } else { None };
    if json {
        let mut report =
            json!({ "distance": distance, "cost": cost, "window": format!("{window:?}") });
        if let Some(path) = &path {
            report["path"] = json!(path);
        }
        print_json(&report)
    } else {
        match path {
            None => println!("{distance}"),
            Some(path) => {
                println!("distance {distance}");
                for (i, j) in path {
                    println!("{i}\t{j}");
                }
            }
        }
        Ok(())
    }
}

fn matrix(args: MatrixArgs, json: bool) -> anyhow::Result<()> {
    let set = read_inputs(&args.inputs)?;
    let window = args.compare.window.resolve(longest(&set.series))?;
    let options = DtwOptions::new().with_cost(args.compare.metric.cost()).with_window(window);
    let series: Vec<_> = set.series.iter().map(|s| s.as_slice().into()).collect();
    let matrix = distance_matrix(&series, &options, args.threads.map(usize::from))?;
    let rows: Vec<&[f64]> = matrix.values().chunks(matrix.cols().max(1)).collect();
    if json {
        return print_json(&json!({ "window": format!("{window:?}"), "distances": rows }));
    }
    for row in rows {
        let fields: Vec<String> = row.iter().map(f64::to_string).collect();
        println!("{}", fields.join("\t"));
    }
    Ok(())
}

fn knn(args: KnnArgs, json: bool) -> anyhow::Result<()> {
    let train = read_series(&args.train, true)?;
    let test = read_series(&args.test, true)?;
    let (train_labels, test_labels) = (labels(&train), labels(&test));
    let train_series: Vec<_> = train.series.iter().map(|s| s.as_slice().into()).collect();
    let test_series: Vec<_> = test.series.iter().map(|s| s.as_slice().into()).collect();
    let cost = args.metric.cost();
    let threads = args.threads.map(usize::from);
    let (window, learned) = match args.window {
        Some(spec) => (spec.resolve(longest(&train.series))?, None),
        None => {
            let grid: Vec<u32> = (0..=100).collect();
            let selection = select_window(&train_series, &train_labels, cost, &grid, threads)?;
            (selection.window(), Some(selection))
        }
    };
    let options = DtwOptions::new().with_cost(cost).with_window(window);
    let predicted = classify_1nn(&train_series, &train_labels, &test_series, &options, threads)?;
    let error = error_rate(&predicted, &test_labels)?;
    let wrong = predicted.iter().zip(&test_labels).filter(|(p, t)| p != t).count();
    if json {
        return print_json(&json!({
            "window": format!("{window:?}"),
            "learned_percent": learned.as_ref().map(|s| s.percent),
            "loocv_error": learned.as_ref().map(|s| s.error),
            "test_error": error,
            "wrong": wrong,
            "test_size": test_labels.len(),
        }));
    }
    if let Some(s) = &learned {
        println!(
            "window: {}% (radius {}), leave-one-out error {:.4}",
            s.percent, s.radius, s.error
        );
    } else {
        println!("window: {window:?}");
    }
    println!("test error: {error:.4} ({wrong} of {} wrong)", test_labels.len());
    Ok(())
}

fn labels(set: &SeriesSet) -> Vec<String> {
    set.labels.clone().unwrap_or_default()
}

fn search(args: SearchArgs, json: bool) -> anyhow::Result<()> {
    let first = |path: &PathBuf| -> anyhow::Result<Vec<f64>> {
        let set = read_series(path, false)?;
        set.series.into_iter().next().with_context(|| format!("{} holds no series", path.display()))
    };
    let (query, data) = (first(&args.query)?, first(&args.data)?);
    let options = SearchOptions::new(args.radius).with_k(usize::from(args.top));
    let result = subsequence_search(&query, &data, &options)?;
    if json {
        let matches: Vec<_> = result
            .matches
            .iter()
            .map(|m| json!({ "position": m.position, "distance": m.distance, "cost": m.cost }))
            .collect();
        return print_json(&json!({ "matches": matches, "windows": result.stats.windows }));
    }
    for m in &result.matches {
        println!("{}\t{:.6}", m.position, m.distance);
    }
    Ok(())
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value).context("cannot serialise the report")?);
    Ok(())
}
