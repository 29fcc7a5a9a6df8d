package machine

import "testing"

// The DSDT's _PRT and the lines the devices drive agree: every pin of every
// device on bus 0 lands on one of the eight shared GSIs, as the _PRT says.
func TestPCIRoutesMatchINTxLines(t *testing.T) {
	routes := pciRoutes()
	if len(routes) != 31*4 {
		t.Fatalf("%d _PRT entries, want 4 pins for each of devices 1-31", len(routes))
	}
	for _, r := range routes {
		if gsi := pciINTxGSI(r.Device, r.Pin); gsi != r.GSI || gsi < 16 || gsi > 23 {
			t.Errorf("device %d pin %d: _PRT says GSI %d, the line is GSI %d; want one of 16-23", r.Device, r.Pin, r.GSI, gsi)
		}
	}
	for _, c := range []struct {
		dev, pin uint8
		want     uint32
	}{{1, 0, 17}, {9, 0, 17}, {1, 1, 18}, {7, 0, 23}, {8, 0, 16}} {
		if gsi := pciINTxGSI(c.dev, c.pin); gsi != c.want {
			t.Errorf("device %d pin %d on GSI %d, want %d", c.dev, c.pin, gsi, c.want)
		}
	}
}
