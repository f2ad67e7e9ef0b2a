package membership

import (
	"bytes"
	"log/slog"
)

// mlLogWriter receives memberlist's log output, one line per Write as the
// standard log package produces it, and forwards it to the node's slog
// logger through a rate limit. memberlist writes a line for every packet it
// rejects, so without the limit anyone who can send a datagram to the port
// could flood the log.
type mlLogWriter struct {
	out *limitedLog
}

// Write forwards one line. It never fails: a logger must not break
// memberlist.
func (w mlLogWriter) Write(p []byte) (int, error) {
	level, msg := parseMemberlistLine(p)
	w.out.Log(level, msg)
	return len(p), nil
}

// parseMemberlistLine splits a line such as "[WARN] memberlist: text\n"
// into its level and its text. A line without a known prefix is kept whole
// at Info level.
func parseMemberlistLine(p []byte) (slog.Level, string) {
	p = bytes.TrimRight(p, "\r\n")
	if len(p) > 0 && p[0] == '[' {
		if end := bytes.IndexByte(p, ']'); end > 0 {
			if level, ok := memberlistLevel(p[1:end]); ok {
				return level, string(bytes.TrimLeft(p[end+1:], " "))
			}
		}
	}
	return slog.LevelInfo, string(p)
}

// memberlistLevel maps the level names memberlist puts in brackets.
func memberlistLevel(name []byte) (slog.Level, bool) {
	switch string(name) {
	case "DEBUG", "TRACE":
		return slog.LevelDebug, true
	case "INFO":
		return slog.LevelInfo, true
	case "WARN":
		return slog.LevelWarn, true
	case "ERR", "ERROR":
		return slog.LevelError, true
	}
	return 0, false
}
