"""Where mail goes: per-domain routes today, traces and checks of the flow."""
