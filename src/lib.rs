//! topod
pub mod api;
pub mod cli;
pub mod config;
pub mod control;
pub mod dev;
pub mod model;
pub mod node;
pub mod overlay;
