//! Datasets for the tasks.
