//! Model management: loading and checking bundles. Hot swap and signatures come with issue 4.

pub mod bundle;

pub use bundle::{AnyBundle, Bundle, BundleError, Manifest, SeriesBundle};
