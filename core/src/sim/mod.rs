//! The simulation: fake peers that speak the documented wire formats, and a virtual-clock driver.

pub mod driver;
pub mod fake_caller;
pub mod fake_live;
pub mod fake_realtime;
pub mod fake_webrtc;
pub mod net;
pub mod speech;
