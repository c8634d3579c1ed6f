package ops_test

//lint:file-ignore SA1019 the classic dashboard JSON (schema v1) is what Grafana 10 and 11 import; dashboardv2 needs Grafana 12's new API.

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/edgepoll/edgepoll/internal/ops"
)

const dashboardFile = "../../docs/ops/grafana/edgepoll-show.json"

// TestDashboardCommitted checks that the committed dashboard is what the
// code builds (UPDATE=1 rewrites it), and that it decodes strictly into the
// SDK's dashboard schema and validates.
func TestDashboardCommitted(t *testing.T) {
	want, err := ops.DashboardJSON()
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("UPDATE") == "1" {
		if err := os.WriteFile(dashboardFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatalf("%v (generate it: UPDATE=1 go test ./internal/ops -run TestDashboardCommitted)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what internal/ops builds: run UPDATE=1 go test ./internal/ops -run TestDashboardCommitted", filepath.Base(dashboardFile))
	}
	plugins.RegisterDefaultPlugins()
	var d dashboard.Dashboard
	if err := sdkErr(d.UnmarshalJSONStrict(got)); err != nil {
		t.Fatalf("the committed dashboard does not decode strictly into the dashboard schema: %v", err)
	}
	if err := sdkErr(d.Validate()); err != nil {
		t.Fatalf("the committed dashboard does not validate: %v", err)
	}
	if d.Uid == nil || *d.Uid != ops.DashboardUID {
		t.Errorf("uid = %v, want %s", d.Uid, ops.DashboardUID)
	}
	// Count the panels from the JSON itself: the SDK's strict decoder
	// leaves PanelOrRowPanel empty.
	var raw struct {
		Panels []struct {
			Type    string            `json:"type"`
			Title   string            `json:"title"`
			Targets []json.RawMessage `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(got, &raw); err != nil {
		t.Fatal(err)
	}
	panels := 0
	for _, p := range raw.Panels {
		if p.Type == "row" {
			continue
		}
		panels++
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %d (%s) has no title or no query", panels, p.Type)
		}
	}
	if want := len(ops.Panels()); panels != want {
		t.Errorf("the dashboard has %d panels, the code %d", panels, want)
	}
}

// sdkErr unwraps the SDK's error: v0.0.22 returns an empty cog.BuildErrors
// in a non-nil error interface when there is nothing wrong.
func sdkErr(err error) error {
	var be cog.BuildErrors
	if errors.As(err, &be) && len(be) == 0 {
		return nil
	}
	return err
}
