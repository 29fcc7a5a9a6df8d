package compare

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Bundle is the user's OCI bundle, read once. Every workload gets its own
// temporary bundle directory holding only a rewritten config.json: the
// user's bundle is never modified, and its rootfs is shared in place.
type Bundle struct {
	Dir    string
	config map[string]any
	rootfs string // absolute
}

// LoadBundle reads DIR/config.json and resolves its root.path.
func LoadBundle(dir string) (*Bundle, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(abs, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w (build one with make compare-bundle, or pass --bundle)", dir, err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("bundle %s: config.json: %w", dir, err)
	}
	root, _ := cfg["root"].(map[string]any)
	p, _ := root["path"].(string)
	if p == "" {
		return nil, fmt.Errorf("bundle %s: config.json has no root.path", dir)
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(abs, p)
	}
	if _, ok := cfg["process"].(map[string]any); !ok {
		return nil, fmt.Errorf("bundle %s: config.json has no process", dir)
	}
	return &Bundle{Dir: abs, config: cfg, rootfs: p}, nil
}

// HasFile reports whether the rootfs holds path (e.g. /usr/bin/stress-ng).
func (b *Bundle) HasFile(path string) bool {
	_, err := os.Lstat(filepath.Join(b.rootfs, path))
	return err == nil
}

// Write makes a bundle directory under parent whose config.json is the
// user's with process.args replaced by args, root.path absolute, and no
// terminal (the workload's output must come down a pipe to be timed);
// then each edit changes it.
func (b *Bundle) Write(parent string, args []string, edits ...func(cfg map[string]any)) (string, error) {
	cfg := deepCopy(b.config).(map[string]any)
	proc := cfg["process"].(map[string]any)
	a := make([]any, len(args))
	for i, s := range args {
		a[i] = s
	}
	proc["args"] = a
	proc["terminal"] = false
	cfg["root"].(map[string]any)["path"] = b.rootfs
	for _, edit := range edits {
		edit(cfg)
	}
	out, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(parent, "bundle-")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), out, 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = deepCopy(x)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, x := range t {
			s[i] = deepCopy(x)
		}
		return s
	}
	return v
}
