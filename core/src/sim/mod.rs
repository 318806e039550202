//! The simulation: fake peers that speak the documented wire formats, and a virtual-clock driver.

pub mod speech;
