pub mod demo;
pub mod eval;
pub mod eval_iot23;
pub mod fleet_inventory;
pub mod import;
pub mod rules;
pub mod serve;
pub mod sim;
