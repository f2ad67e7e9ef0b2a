package cli

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/warpmesh/warp/internal/input"
	"github.com/warpmesh/warp/wire"
)

func init() {
	subcommands = append(subcommands, newPublishCmd, newRevokeCmd, newWatchCmd, newMembersCmd)
}

// ExitNotSatisfied is the exit status of warp publish when the
// acknowledgements it waited for fell short.
const ExitNotSatisfied = 3

// maxResponseBytes bounds what the client reads of a node's answer.
const maxResponseBytes = 8 << 20

// clientFlags are the flags every client subcommand has.
type clientFlags struct {
	addr string
}

func (c *clientFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.addr, "addr", "http://"+DefaultHTTPAddr, "base URL of a node's HTTP API (warp node --http)")
}

// url returns the endpoint path on the node.
func (c *clientFlags) url(path string, query url.Values) (string, error) {
	base := strings.TrimSpace(c.addr)
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usagef("--addr %q: want a URL such as http://127.0.0.1:7947", c.addr)
	}
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = query.Encode()
	return u.String(), nil
}

// call sends a request and decodes a JSON answer into out (2xx) or
// returns a *nodeError carrying the status and body.
func (c *clientFlags) call(ctx context.Context, method, path string, body, out any) error {
	u, err := c.url(path, nil)
	if err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the node at %s: %w", c.addr, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("reading the node's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return &nodeError{status: resp.StatusCode, body: data}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("the node's answer is not what warp expects: %w", err)
		}
	}
	return nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// nodeError is a non-2xx answer of a node.
type nodeError struct {
	status int
	body   []byte
}

func (e *nodeError) Error() string {
	var ae input.APIError
	if json.Unmarshal(e.body, &ae) == nil && ae.Error != "" {
		return fmt.Sprintf("node answered %d: %s", e.status, ae.Error)
	}
	return fmt.Sprintf("node answered %d: %s", e.status, strings.TrimSpace(input.Printable(string(e.body))))
}

// --- warp publish ---

type publishFlags struct {
	clientFlags
	await, awaitReplicas, awaitZones, zoneQuorum int
	timeout                                      time.Duration
	scope                                        string
}

func newPublishCmd() *cobra.Command {
	var f publishFlags
	cmd := &cobra.Command{
		Use:   "publish KEY...",
		Short: "Invalidate keys on every node, optionally waiting for replicas or zones",
		Long: "publish asks a node (--addr) to invalidate the keys on every node of its\n" +
			"cluster. With --await-replicas N (or --await N) it waits until N other nodes\n" +
			"applied each key; with --await-zones K until K zones did, the node's own\n" +
			"included. Exit status: 0 when published (and satisfied), 3 when the\n" +
			"acknowledgements fell short (the figures on stderr), 2 on a usage error,\n" +
			"1 on any other failure.",
		Example: "  warp publish user:42\n" +
			"  warp publish --await-zones 3 user:42 user:43\n" +
			"  warp publish --await 2 --timeout 500ms user:42",
		Args: rangeArgs(1, input.MaxPublishKeys, "one or more keys"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPublish(cmd.Context(), cmd.OutOrStdout(), f, args)
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.IntVar(&f.awaitReplicas, "await-replicas", 0, "wait until this many other nodes applied each key")
	fl.IntVar(&f.await, "await", 0, "short for --await-replicas")
	fl.IntVar(&f.awaitZones, "await-zones", 0, "wait until this many zones applied each key")
	fl.IntVar(&f.zoneQuorum, "zone-quorum", 0, "with --await-zones: a zone counts once this many of its nodes applied the key")
	fl.DurationVar(&f.timeout, "timeout", 0, "give up waiting after this long (default: the node's --ack-timeout)")
	fl.StringVar(&f.scope, "scope", "local", "event scope: local or global")
	return cmd
}

func (f publishFlags) request(keys []string) (input.PublishRequest, error) {
	req := input.PublishRequest{Keys: keys, Scope: f.scope}
	if f.await != 0 && f.awaitReplicas != 0 {
		return req, usagef("give --await or --await-replicas, not both")
	}
	replicas := cmp.Or(f.awaitReplicas, f.await)
	switch {
	case replicas != 0 && f.awaitZones != 0:
		return req, usagef("give --await-replicas or --await-zones, not both")
	case replicas < 0 || f.awaitZones < 0 || f.zoneQuorum < 0:
		return req, usagef("--await-replicas, --await-zones and --zone-quorum take positive numbers")
	case f.zoneQuorum != 0 && f.awaitZones == 0:
		return req, usagef("--zone-quorum needs --await-zones")
	case f.timeout < 0 || f.timeout > input.MaxAwaitTimeout:
		return req, usagef("--timeout %v out of range (0..%v)", f.timeout, input.MaxAwaitTimeout)
	case f.scope != "local" && f.scope != "global":
		return req, usagef("--scope %q: want local or global", f.scope)
	}
	for _, k := range keys {
		if k == "" {
			return req, usagef("an empty key")
		}
		if len(k) > wire.MaxKeyLen {
			return req, usagef("a key of %d bytes; at most %d", len(k), wire.MaxKeyLen)
		}
	}
	if replicas > 0 {
		req.Replicas = &replicas
	}
	if f.awaitZones > 0 {
		req.Zones = &f.awaitZones
	}
	if f.zoneQuorum > 0 {
		req.ZoneQuorum = &f.zoneQuorum
	}
	if f.timeout > 0 {
		req.Timeout = f.timeout.String()
	}
	return req, nil
}

func runPublish(ctx context.Context, out io.Writer, f publishFlags, keys []string) error {
	req, err := f.request(keys)
	if err != nil {
		return err
	}
	if _, err := f.url("", nil); err != nil {
		return err
	}
	var resp publishResponse
	err = f.call(ctx, http.MethodPost, "/v1/publish", req, &resp)
	var ne *nodeError
	if errors.As(err, &ne) {
		var qf quorumFailure
		if json.Unmarshal(ne.body, &qf) == nil && qf.Mode != "" {
			return exitError{code: ExitNotSatisfied, err: errors.New(describeFailure(qf))}
		}
		if ne.status == http.StatusBadRequest {
			return usageError{ne} // the node refused what the command line said
		}
	}
	if err != nil {
		return err
	}
	for _, r := range resp.Results {
		switch resp.Mode {
		case "replicas":
			fmt.Fprintf(out, "%s: applied by %d node(s) %v in %s\n", r.Key, len(r.AckedNodes), r.AckedNodes, r.Latency)
		case "zones":
			fmt.Fprintf(out, "%s: applied in %d zone(s) %v, by node(s) %v, in %s\n", r.Key, len(r.AckedZones), r.AckedZones, r.AckedNodes, r.Latency)
		default:
			fmt.Fprintf(out, "%s: published in %s\n", r.Key, r.Latency)
		}
	}
	return nil
}

// describeFailure puts a quorum failure's figures on one line.
func describeFailure(qf quorumFailure) string {
	var b strings.Builder
	unit := "replicas"
	got := len(qf.AckedNodes)
	if qf.Mode == "zones" {
		unit, got = "zones", len(qf.AckedZones)
	}
	fmt.Fprintf(&b, "%s: not satisfied: %d of %d %s", qf.Key, got, qf.Required, unit)
	if qf.ZoneQuorum > 0 {
		fmt.Fprintf(&b, " (zone quorum %d)", qf.ZoneQuorum)
	}
	switch {
	case qf.FailFast:
		fmt.Fprintf(&b, "; failed fast: only %d available", qf.Available)
	case qf.Code == "deadline_exceeded":
		b.WriteString("; deadline exceeded")
	}
	fmt.Fprintf(&b, "; acked nodes %v; acked zones %v", qf.AckedNodes, qf.AckedZones)
	if len(qf.MissingZones) > 0 {
		fmt.Fprintf(&b, "; missing zones %v", qf.MissingZones)
	}
	return b.String()
}

// --- warp revoke ---

func newRevokeCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "revoke LEASE",
		Short: "Revoke a lease on every node",
		Args:  exactArgs(1, "one lease ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "" {
				return usagef("an empty lease ID")
			}
			if len(args[0]) > wire.MaxKeyLen {
				return usagef("a lease ID of %d bytes; at most %d", len(args[0]), wire.MaxKeyLen)
			}
			if err := f.call(cmd.Context(), http.MethodPost, "/v1/revoke", input.RevokeRequest{Lease: args[0]}, nil); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "lease %s revoked\n", args[0])
			return err
		},
	}
	f.register(cmd)
	return cmd
}

// --- warp watch ---

type watchFlags struct {
	clientFlags
	prefix, lease string
	all, json     bool
}

func newWatchCmd() *cobra.Command {
	var f watchFlags
	cmd := &cobra.Command{
		Use:   "watch [KEY | --prefix P | --all | --lease ID]",
		Short: "Print the events a node receives, one line each, until interrupted",
		Long: "watch subscribes on a node (--addr) to one key, a key prefix, every key or\n" +
			"a lease, and prints one line per event (invalidate, lease_revoke, or resync\n" +
			"when events may have been missed) until interrupted; --json prints each\n" +
			"event as a JSON object.",
		Args: rangeArgs(0, 1, "at most one key"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWatch(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f, args)
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.prefix, "prefix", "", "watch every key starting with this prefix")
	fl.BoolVar(&f.all, "all", false, "watch every key")
	fl.StringVar(&f.lease, "lease", "", "watch the revocations of this lease")
	fl.BoolVar(&f.json, "json", false, "print each event as a JSON object")
	return cmd
}

func runWatch(ctx context.Context, out, errOut io.Writer, f watchFlags, args []string) error {
	q := url.Values{}
	n := 0
	if len(args) == 1 {
		if args[0] == "" {
			return usagef("an empty key")
		}
		q.Set("key", args[0])
		n++
	}
	if f.prefix != "" {
		q.Set("prefix", f.prefix)
		n++
	}
	if f.all {
		q.Set("all", "1")
		n++
	}
	if f.lease != "" {
		q.Set("lease", f.lease)
		n++
	}
	if n != 1 {
		return usagef("give exactly one of KEY, --prefix, --all or --lease")
	}
	u, err := f.url("/v1/watch", q)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted before the node answered
		}
		return fmt.Errorf("cannot reach the node at %s: %w", f.addr, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
		return &nodeError{status: resp.StatusCode, body: data}
	}
	// The node subscribed before it answered: from here no event is missed.
	what := "every key"
	switch {
	case q.Has("key"):
		what = "key " + q.Get("key")
	case q.Has("prefix"):
		what = "prefix " + q.Get("prefix")
	case q.Has("lease"):
		what = "lease " + q.Get("lease")
	}
	fmt.Fprintf(errOut, "warp: watching %s on %s (Ctrl-C stops)\n", what, f.addr)

	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxResponseBytes)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var ev eventJSON
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("the node sent something that is not an event: %w", err)
		}
		if f.json {
			if _, err := fmt.Fprintf(out, "%s\n", line); err != nil {
				return err
			}
			continue
		}
		if _, err := fmt.Fprintln(out, formatEvent(ev)); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil // interrupted: the normal way to stop
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("the stream broke: %w", err)
	}
	return errors.New("the node ended the stream (it is shutting down)")
}

// formatEvent renders an event on one line for people.
func formatEvent(ev eventJSON) string {
	ts := ev.Time
	if t, err := time.Parse(time.RFC3339Nano, ev.Time); err == nil {
		ts = t.Local().Format("15:04:05.000")
	}
	line := fmt.Sprintf("%s %-12s %s", cmp.Or(ts, "-"), ev.Op, ev.Key)
	if ev.Origin != "" {
		line += fmt.Sprintf("  from %s", ev.Origin)
		if ev.Zone != "" {
			line += fmt.Sprintf(" (zone %s)", ev.Zone)
		}
	}
	if ev.Scope == "global" {
		line += "  global"
	}
	return line
}

// --- warp members ---

func newMembersCmd() *cobra.Command {
	var f clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List a node's view of the cluster, grouped by zone",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp membersResponse
			if err := f.call(cmd.Context(), http.MethodGet, "/v1/members", nil, &resp); err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(resp)
			}
			return printMembers(cmd.OutOrStdout(), resp)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the node's JSON answer")
	return cmd
}

// printMembers prints a table of members grouped by zone, the node asked
// marked with '*'.
func printMembers(out io.Writer, resp membersResponse) error {
	ms := slices.Clone(resp.Members)
	slices.SortFunc(ms, func(a, b memberJSON) int {
		return cmp.Or(cmp.Compare(a.Zone, b.Zone), cmp.Compare(a.Name, b.Name))
	})
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tNAME\tSTATE\tADDRESS\tREGION")
	zones := map[string]int{}
	alive := 0
	for _, m := range ms {
		name := m.Name
		if name == resp.Self {
			name += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cmp.Or(m.Zone, "-"), name, m.State, cmp.Or(m.Addr, "-"), cmp.Or(m.Region, "-"))
		if m.State == "alive" || m.State == "suspect" {
			alive++
			zones[m.Zone]++
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "%d member(s), %d alive in %d zone(s); * is %s\n", len(ms), alive, len(zones), resp.Self)
	return err
}
