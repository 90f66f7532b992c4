//! The relay every simulated device has, whatever its family: the one place a command takes
//! effect. Commands switch it (on, off, toggle); something else may hold it (Tasmota's
//! `PowerLock`, a relay another system drives), and then a command changes nothing; a button or
//! another controller sets it by hand. Each family's firmware only decodes what it is asked and
//! reports what happened in its own dialect; the simulator's Switchboard devices switch their
//! light through the same relay.

/// What a command asks of the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
    /// The other way.
    Toggle,
}

impl Switch {
    /// `On` or `Off`.
    pub fn to(on: bool) -> Switch {
        if on {
            Switch::On
        } else {
            Switch::Off
        }
    }

    /// `ON`, `OFF` or `TOGGLE`, in any case.
    pub fn parse_word(s: &str) -> Option<Switch> {
        match crate::family::on_off(s) {
            Some(true) => Some(Switch::On),
            Some(false) => Some(Switch::Off),
            None => s.eq_ignore_ascii_case("toggle").then_some(Switch::Toggle),
        }
    }
}

/// See the [module documentation](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Relay {
    on: bool,
    held: bool,
}

impl Relay {
    /// A free relay, `on` or off.
    pub fn new(on: bool) -> Relay {
        Relay { on, held: false }
    }

    /// Whether it is on.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Something else holds it (`true`) or lets it go.
    pub fn hold(&mut self, held: bool) {
        self.held = held;
    }

    /// Whether something else holds it.
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// Where `asked` would put it from where it is.
    pub fn target(&self, asked: Switch) -> bool {
        match asked {
            Switch::On => true,
            Switch::Off => false,
            Switch::Toggle => !self.on,
        }
    }

    /// A command asks `asked`; returns whether it switched. A held relay stays as it is.
    pub fn apply(&mut self, asked: Switch) -> bool {
        if self.held {
            return false;
        }
        let before = self.on;
        self.on = self.target(asked);
        before != self.on
    }

    /// Set by hand (a button, another controller); returns whether it changed.
    pub fn set_locally(&mut self, on: bool) -> bool {
        let changed = self.on != on;
        self.on = on;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_relay_stays_and_a_toggle_goes_the_other_way() {
        let mut r = Relay::new(false);
        assert!(r.apply(Switch::Toggle));
        assert!(r.is_on());
        assert!(!r.apply(Switch::On), "already on");
        r.hold(true);
        assert!(!r.apply(Switch::Off));
        assert!(r.is_on(), "held");
        assert!(r.set_locally(false), "by hand, held or not");
        assert_eq!(Switch::parse_word("toggle"), Some(Switch::Toggle));
        assert_eq!(Switch::parse_word("maybe"), None);
    }
}
