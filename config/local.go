package config

import (
	"fmt"
	"os"
	"reflect"

	"gopkg.in/yaml.v3"
)

// Local is the part of a config that commands working on the state file
// alone need — listing events, deliveries and cursors, probing a running
// daemon — and nothing that holds a secret of an API or a receiver.
type Local struct {
	// File is the path the config was loaded from.
	File  string
	State State
	// Listen is http.listen: the daemon's HTTP address; empty for none.
	Listen string
}

// LoadLocal reads the state: block and http.listen of the config file at
// path, with variables from the process environment. Only those keys are
// expanded, decoded and checked: the sources, resources and destinations
// (and their secrets) are left alone, so their variables need not be set,
// and a mistake there is not reported (Load reports it).
func LoadLocal(path string) (*Local, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseLocal(path, data, os.LookupEnv)
}

// ParseLocal is LoadLocal for a config already read, as Parse is Load's.
func ParseLocal(file string, data []byte, lookupEnv func(string) (string, bool)) (*Local, error) {
	root, errs := parseYAML(file, data)
	if errs != nil {
		return nil, errs
	}
	d := newDecoder()
	// A mapping of the kept keys only, copied with their aliases resolved
	// (an anchor may sit under an x- key, which is not kept), so that the
	// rest of the file is neither expanded nor decoded.
	kept := &yaml.Node{Kind: yaml.MappingNode}
	for _, kv := range d.pairs(root, nil) {
		switch kv.key.Value {
		case "state":
			kept.Content = append(kept.Content, kv.key, d.copyResolved(kv.value, keyPath{{key: "state"}}))
		case "http":
			v := d.copyResolved(kv.value, keyPath{{key: "http"}})
			if v.Kind != yaml.MappingNode {
				kept.Content = append(kept.Content, kv.key, v) // decoding reports it
				continue
			}
			http := &yaml.Node{Kind: yaml.MappingNode, Line: v.Line, Column: v.Column}
			for _, hkv := range d.pairs(v, keyPath{{key: "http"}}) {
				if hkv.key.Value == "listen" {
					http.Content = append(http.Content, hkv.key, hkv.value)
				}
			}
			kept.Content = append(kept.Content, kv.key, http)
		}
	}
	d.expandEnv(kept, nil, lookupEnv)
	c := &Config{}
	c.setDefaults()
	d.decode(kept, reflect.ValueOf(c).Elem(), nil)
	c.File = file
	v := &validator{d: d, c: c}
	v.local()
	if errs := d.errors(file, c); errs != nil {
		return nil, errs
	}
	return &Local{File: file, State: c.State, Listen: c.HTTP.Listen}, nil
}

// copyResolved returns a copy of n in which every alias is replaced by a
// copy of what it refers to, so that expanding the copy's variables
// expands those of the anchors it uses, and nothing else. Like decoding,
// it counts its steps, so that aliases of aliases cannot make it run for
// ever.
func (d *decoder) copyResolved(n *yaml.Node, p keyPath) *yaml.Node {
	if !d.step(n, p) {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line}
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line}
		}
		return d.copyResolved(n.Alias, p)
	}
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		c.Content[i] = d.copyResolved(child, p)
	}
	return &c
}
