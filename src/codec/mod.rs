//! Layer codecs.

pub(crate) mod gzip;
