package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// qmpClient speaks QEMU's machine protocol one command at a time, remembering
// the events that arrive in between.
type qmpClient struct {
	conn   net.Conn
	r      *bufio.Reader
	events []string
}

// qmpMessage is any line QEMU sends: a greeting, a reply or an event.
type qmpMessage struct {
	QMP    json.RawMessage `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string `json:"event"`
}

// dialQMP connects to an abstract unix socket, retrying until QEMU listens
// or exits (closes exited). Every later read and write must finish by
// ctx's deadline.
func dialQMP(ctx context.Context, name string, exited <-chan struct{}) (*qmpClient, error) {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "unix", "@"+name)
		if err == nil {
			deadline, _ := ctx.Deadline()
			return newQMPClient(conn, deadline)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to QMP socket @%s: %w", name, err)
		case <-exited:
			return nil, errors.New("QEMU exited before its QMP socket answered")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// newQMPClient reads the greeting and negotiates capabilities.
func newQMPClient(conn net.Conn, deadline time.Time) (*qmpClient, error) {
	c := &qmpClient{conn: conn, r: bufio.NewReader(conn)}
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, err
	}
	m, err := c.read()
	if err == nil && m.QMP == nil {
		err = errors.New("not a QMP server")
	}
	if err == nil {
		_, err = c.execute("qmp_capabilities", nil)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("QMP greeting: %w", err)
	}
	return c, nil
}

func (c *qmpClient) Close() error { return c.conn.Close() }

func (c *qmpClient) read() (qmpMessage, error) {
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return qmpMessage{}, err
	}
	var m qmpMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return qmpMessage{}, fmt.Errorf("QMP: %w in %q", err, line)
	}
	return m, nil
}

// execute sends one command and returns its reply.
func (c *qmpClient) execute(cmd string, args any) (json.RawMessage, error) {
	req, err := json.Marshal(struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
	}{cmd, args})
	if err != nil {
		return nil, err
	}
	if _, err := c.conn.Write(append(req, '\n')); err != nil {
		return nil, fmt.Errorf("QMP %s: %w", cmd, err)
	}
	for {
		m, err := c.read()
		switch {
		case err != nil:
			return nil, fmt.Errorf("QMP %s: %w", cmd, err)
		case m.Event != "":
			c.events = append(c.events, m.Event)
		case m.Error != nil:
			return nil, fmt.Errorf("QMP %s: %s: %s", cmd, m.Error.Class, m.Error.Desc)
		case m.Return != nil:
			return m.Return, nil
		}
	}
}

// waitEvent returns once QEMU has sent the named event.
func (c *qmpClient) waitEvent(name string) error {
	for {
		for _, e := range c.events {
			if e == name {
				return nil
			}
		}
		m, err := c.read()
		if err != nil {
			return fmt.Errorf("waiting for QMP event %s: %w", name, err)
		}
		if m.Event != "" {
			c.events = append(c.events, m.Event)
		}
	}
}

// vcpuStats asks KVM's binary statistics of every vCPU and sums them.
func (c *qmpClient) vcpuStats() (map[string]uint64, error) {
	reply, err := c.execute("query-stats", map[string]any{
		"target":    "vcpu",
		"providers": []map[string]string{{"provider": "kvm"}},
	})
	if err != nil {
		return nil, err
	}
	return sumStats(reply)
}

// sumStats sums each named statistic of a query-stats reply (qapi/stats.json:
// a list of StatsResult, one per vCPU) over its objects. A histogram counts
// as the sum of its buckets.
func sumStats(reply json.RawMessage) (map[string]uint64, error) {
	var results []struct {
		Provider string `json:"provider"`
		Stats    []struct {
			Name  string          `json:"name"`
			Value json.RawMessage `json:"value"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(reply, &results); err != nil {
		return nil, fmt.Errorf("query-stats reply: %w", err)
	}
	if len(results) == 0 {
		return nil, errors.New("query-stats returned no vCPU: is QEMU using KVM?")
	}
	sum := map[string]uint64{}
	for _, r := range results {
		for _, s := range r.Stats {
			v, err := statValue(s.Value)
			if err != nil {
				return nil, fmt.Errorf("query-stats %s: %w", s.Name, err)
			}
			sum[s.Name] += v
		}
	}
	return sum, nil
}

// statValue reads a StatsValue: a scalar, a list (histogram) or, in later
// QEMUs, a boolean, which counts as 0 or 1.
func statValue(raw json.RawMessage) (uint64, error) {
	var n uint64
	if json.Unmarshal(raw, &n) == nil {
		return n, nil
	}
	var list []uint64
	if json.Unmarshal(raw, &list) == nil {
		for _, x := range list {
			n += x
		}
		return n, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		if b {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("unexpected value %s", raw)
}
