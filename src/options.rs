//! Everything a run can be told, parsed once from the command line by `main` and passed down.

use std::path::PathBuf;

use crate::layout::{Layout, DEFAULT_LAYOUT};

/// Options of `photoferry organize`.
#[derive(Debug, Clone)]
pub struct OrganizeOptions {
    /// Folders, zips and single files to read. Read-only to us. Default: none (required).
    pub inputs: Vec<PathBuf>,
    /// The output folder; created if missing. Its state lives in `OUT/.photoferry/`.
    pub out: PathBuf,
    /// Where each file goes under `out`. Default: `{year}/{name}`.
    pub layout: Layout,
    /// Plan only: read and hash, print what would happen, write nothing. Default: false.
    pub dry_run: bool,
    /// Flush written files to disk before recording them and reporting success. Turning it off
    /// is faster on slow disks, but a power cut soon after the run can lose files the summary
    /// called written. Default: true.
    pub sync: bool,
    /// Keep items from an export's `Recently Deleted/` (and rows flagged deleted). Default: false.
    pub include_deleted: bool,
    /// Place each asset once, in its first album folder, instead of once per album. Default: false.
    pub once: bool,
    /// Keep edited renders (`IMG_E1234.*`) and `.AAE` sidecars next to their photo. Default: true.
    pub keep_edits: bool,
    /// Album names for inputs that carry none (browser zips, plain folders): (input path, album).
    /// Default: none.
    pub albums: Vec<(PathBuf, String)>,
    /// Convert HEIC/HEIF stills to JPEG (`--convert jpeg`). Default: false.
    pub convert: bool,
    /// JPEG quality for conversions, 1–100. Default: 90.
    pub quality: u8,
    /// With `convert`: keep the HEIC beside its JPEG instead of replacing it. Default: false.
    pub keep_original: bool,
}

impl OrganizeOptions {
    pub fn new(inputs: Vec<PathBuf>, out: PathBuf) -> Self {
        OrganizeOptions {
            inputs,
            out,
            layout: Layout::parse(DEFAULT_LAYOUT).expect("the default layout is valid"),
            dry_run: false,
            sync: true,
            include_deleted: false,
            once: false,
            keep_edits: true,
            albums: Vec::new(),
            convert: false,
            quality: crate::convert::DEFAULT_QUALITY,
            keep_original: false,
        }
    }
}
