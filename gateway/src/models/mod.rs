//! Model management: loading, checking and verifying bundles. Hot swap comes with issue 6.

pub mod bundle;
pub mod signature;

pub use bundle::{AnyBundle, Bundle, BundleError, Manifest, SeriesBundle};
pub use signature::{PublicKey, SignatureError, SignatureStatus, Trust};
