//! The route handlers, one module per resource.

pub mod fid;
pub mod health;
pub mod jobs;
pub mod models;
pub mod references;
pub mod v2;
pub mod web;
