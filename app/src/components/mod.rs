//! The panel's parts, one component per file.

pub mod add_device;
pub mod app;
pub mod connect_form;
pub mod connection_badge;
pub mod device_card;
pub mod device_detail;
pub mod family_groups;
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

/// A number with one decimal, as SVG coordinates, percentages and temperatures are drawn:
/// `12.3`, `-0.5`. Integer arithmetic: the panel carries no float formatting for this.
pub fn tenths(x: f64) -> String {
    let t = (x * 10.0).round() as i64;
    let sign = if t < 0 { "-" } else { "" };
    let t = t.unsigned_abs();
    format!("{sign}{}.{}", t / 10, t % 10)
}

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

#[cfg(test)]
mod tests {
    use super::tenths;
    #[cfg(target_family = "wasm")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn tenths_round_like_the_float_formatter() {
        for x in [0.0, 12.34, 21.5, -0.04, -0.06, -3.26, 99.94, 1234.56, 0.049] {
            assert_eq!(tenths(x), format!("{x:.1}").replace("-0.0", "0.0"), "{x}");
        }
    }
}
