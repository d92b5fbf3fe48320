//! topod
pub mod api;
pub mod control;
pub mod model;
pub mod overlay;
