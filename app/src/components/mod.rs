//! The panel's parts, one component per file.

pub mod add_device;
pub mod app;
pub mod connect_form;
pub mod connection_badge;
pub mod device_card;
pub mod device_detail;
pub mod fanout_matrix;
pub mod fleet_grid;
pub mod group_command;
pub mod history;
pub mod history_row;
pub mod light;
pub mod log_viewer;
pub mod notices;
pub mod sequence_stepper;
pub mod telemetry_chart;
pub mod text_command;

use switchboard_protocol::Timestamp;

/// A wall-clock time as `HH:MM:SS.mmm` (UTC).
pub fn clock_time(t: Timestamp) -> String {
    let ms = t.as_millis();
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}
