pub mod demo;
pub mod fleet_inventory;
pub mod import;
pub mod serve;
pub mod sim;
