//! topod
pub mod control;
pub mod model;
pub mod overlay;
pub mod sim;
