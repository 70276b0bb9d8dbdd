package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/gatehouse/gatehouse/locale"
)

// errUsage marks an error in how the command was called.
var errUsage = errors.New("usage")

func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errUsage)
}

// codeUsage is the stable code printed after a usage error's message.
const codeUsage = "usage"

// usageError is a mistake in how a command was called, as a catalog
// message (cli.usage.*) and its data: report prints it in the run's
// language, Error in English.
type usageError struct {
	ID   string
	Data map[string]any
}

// usage returns the usage error of message id with data given as
// name, value pairs.
func usage(id string, kv ...any) error {
	data := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		data[kv[i].(string)] = kv[i+1]
	}
	return &usageError{ID: "cli.usage." + id, Data: data}
}

func (e *usageError) Error() string {
	cat, err := englishCatalog()
	if err != nil {
		return e.ID
	}
	return cat.Text(locale.Languages[0], e.ID, e.Data)
}

func (e *usageError) Is(target error) bool { return target == errUsage }

// englishCatalog is the catalog usage errors render their English text from.
var englishCatalog = sync.OnceValues(locale.New)

// errDenied makes check exit with status 3 after printing its decision.
var errDenied = errors.New("denied")

// errHelp ends a run that printed help.
var errHelp = errors.New("help")

// globalFlags registers on fs the flags every command accepts, before or
// after its name, except those in own: a command's own flag of the same
// name (audit list --actor filters by actor) takes its place. The --lang
// default is the language the environment resolves to, not the raw LANG.
func (m *Main) globalFlags(fs *flag.FlagSet, own map[string]bool) {
	if !own["db"] {
		fs.StringVar(&m.Config.DB, "db", m.Config.DB, "store: a SQLite file `PATH`, sqlite:PATH or a postgres:// URL (env GATEHOUSE_DB)")
	}
	if !own["actor"] {
		fs.StringVar(&m.Config.Actor, "actor", m.Config.Actor, "who the audit trail records for changes, as `NAME` (env GATEHOUSE_ACTOR)")
	}
	if !own["lang"] {
		fs.StringVar(&m.Config.Lang, "lang", m.lang(), "messages in language `LANG`: de, en, es, fr, it, zh (env GATEHOUSE_LANG, LC_ALL, LC_MESSAGES, LANG; C and POSIX are English)")
	}
	if !own["bootstrap-superuser"] {
		fs.StringVar(&m.Config.BootstrapSuperuser, "bootstrap-superuser", m.Config.BootstrapSuperuser, "make this `EMAIL` a superuser if the store has none (env GATEHOUSE_BOOTSTRAP_SUPERUSER)")
	}
	if !own["verbose"] {
		fs.BoolVar(&m.Config.Verbose, "verbose", m.Config.Verbose, "print an error's internal cause too")
	}
}

// isGlobal reports whether name is a global flag.
func isGlobal(name string) bool {
	switch name {
	case "db", "actor", "lang", "bootstrap-superuser", "verbose":
		return true
	}
	return false
}

// flagSet returns cmd's flags and the global ones, parsing into m, and the
// names of cmd's own flags.
func (m *Main) flagSet(cmd *command) (*flag.FlagSet, map[string]bool) {
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	own := map[string]bool{}
	if cmd.flags != nil {
		cmd.flags(fs, &m.opts)
		fs.VisitAll(func(f *flag.Flag) { own[f.Name] = true })
	}
	m.globalFlags(fs, own)
	return fs, own
}

// takesValue reports whether the flag name, of any command, needs a value
// after it; unknown flags are taken not to.
func takesValue(name string) bool {
	var m Main
	for i := range commands {
		fs, _ := m.flagSet(&commands[i])
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
			return true
		}
	}
	return false
}

// splitLeading splits the flags before the command's name from the rest.
func splitLeading(args []string) (lead, rest []string) {
	i := 0
	for i < len(args) {
		a := args[i]
		if a == "-" || a == "--" || !strings.HasPrefix(a, "-") {
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		i++
		if !hasValue && i < len(args) && takesValue(name) {
			i++
		}
	}
	return args[:i], args[i:]
}

// hasFlag reports whether args, flags only, hold --name or -name.
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); n == name && strings.HasPrefix(a, "-") {
			return true
		}
	}
	return false
}

// ParseFlags picks the command named by the arguments and parses its flags;
// global flags (--db, --actor, --lang, --bootstrap-superuser, --verbose)
// are accepted before and after the command's name, and the command's own
// flags anywhere after it.
func (m *Main) ParseFlags(args []string) error {
	cat, err := locale.New()
	if err != nil {
		return err
	}
	m.catalog = cat
	// A usage error found before the flags are parsed is in the language
	// --lang asks for.
	if lang, ok := langArg(args); ok {
		m.Config.Lang = lang
	}
	lead, words := splitLeading(args)
	if len(words) == 0 {
		switch {
		case hasFlag(lead, "version"):
			words = []string{"version"}
			lead = slices.DeleteFunc(slices.Clone(lead), func(a string) bool { return hasFlag([]string{a}, "version") })
		case len(args) == 0, hasFlag(lead, "h"), hasFlag(lead, "help"):
			m.printHelp()
			return errHelp
		default:
			return usage("no_command")
		}
	}
	if words[0] == "help" {
		return m.help(words[1:])
	}
	cmd, rest := findCommand(words)
	if cmd == nil {
		if isGroup(words[0]) {
			m.group = words[0]
			if len(words) == 1 || strings.HasPrefix(words[1], "-") {
				return usage("group_needs_subcommand", "Group", words[0])
			}
		}
		return usage("unknown_command", "Command", strings.Join(words[:min(2, len(words))], " "))
	}
	m.cmd = cmd
	fs, _ := m.flagSet(cmd)
	rest = slices.Concat(lead, rest)
	// Accept flags after positional arguments too.
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				m.printCommandHelp(cmd)
				return errHelp
			}
			return flagError(err)
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		m.args = append(m.args, rest[0])
		rest = rest[1:]
	}
	if len(m.args) < cmd.minArgs || (cmd.maxArgs >= 0 && len(m.args) > cmd.maxArgs) {
		return usage("wrong_args")
	}
	return m.Config.Validate()
}

// langArg is the value of the last --lang flag in args.
func langArg(args []string) (lang string, ok bool) {
	for i, a := range args {
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "lang" {
			continue
		}
		switch {
		case hasValue:
			lang, ok = value, true
		case i+1 < len(args):
			lang, ok = args[i+1], true
		}
	}
	return lang, ok
}

// flagError is the usage error for err of package flag, naming the flag
// as help does.
func flagError(err error) error {
	s := gnuFlagError(err)
	for _, p := range []struct{ prefix, id string }{
		{"flag provided but not defined: ", "unknown_flag"},
		{"flag needs an argument: ", "flag_needs_value"},
	} {
		if name, ok := strings.CutPrefix(s, p.prefix); ok {
			return usage(p.id, "Flag", name)
		}
	}
	if m := badFlagValue.FindStringSubmatch(s); m != nil {
		return usage("flag_bad_value", "Value", m[1], "Flag", m[2], "Detail", m[3])
	}
	return usage("flag_syntax", "Detail", s)
}

// badFlagValue matches package flag's error for a value a flag rejects.
var badFlagValue = regexp.MustCompile(`^invalid (?:boolean )?value (".*") for (?:flag )?(-\S+): (.*)$`)

// gnuFlagError spells the flag in a flag package error as help does:
// --name, not -name.
func gnuFlagError(err error) string {
	s := err.Error()
	for _, p := range []string{"not defined: -", "needs an argument: -", "for flag -", "for -"} {
		i := strings.Index(s, p)
		if i < 0 {
			continue
		}
		at := i + len(p)
		name, _, _ := strings.Cut(s[at:], ":")
		if len(name) > 1 {
			return s[:at] + "-" + s[at:]
		}
	}
	return s
}

// help prints the help of the command or group words name.
func (m *Main) help(words []string) error {
	if len(words) == 0 {
		m.printHelp()
		return errHelp
	}
	if cmd, rest := findCommand(words); cmd != nil && len(rest) == 0 {
		m.printCommandHelp(cmd)
		return errHelp
	}
	if len(words) == 1 && isGroup(words[0]) {
		m.printGroup(m.Stdout, words[0])
		return errHelp
	}
	return usage("no_help", "Command", strings.Join(words, " "))
}

func findCommand(args []string) (*command, []string) {
	if len(args) >= 2 {
		for i := range commands {
			if commands[i].name == args[0]+" "+args[1] {
				return &commands[i], args[2:]
			}
		}
	}
	for i := range commands {
		if commands[i].name == args[0] {
			return &commands[i], args[1:]
		}
	}
	return nil, nil
}

// isGroup reports whether name is the first word of two-word commands.
func isGroup(name string) bool {
	for i := range commands {
		if strings.HasPrefix(commands[i].name, name+" ") {
			return true
		}
	}
	return false
}

// sortedCommands returns the commands whose name starts with prefix, by name.
func sortedCommands(prefix string) []*command {
	var cmds []*command
	for i := range commands {
		if strings.HasPrefix(commands[i].name, prefix) {
			cmds = append(cmds, &commands[i])
		}
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	return cmds
}

func printCommands(w io.Writer, cmds []*command) {
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-22s %s\n", c.name, c.summary)
	}
}

// printGroup lists the subcommands of group.
func (m *Main) printGroup(w io.Writer, group string) {
	fmt.Fprintf(w, "usage: gatehouse %s SUBCOMMAND [flags]\n\ncommands:\n", group)
	printCommands(w, sortedCommands(group+" "))
	fmt.Fprintf(w, "\nrun 'gatehouse help %s SUBCOMMAND' for a command's flags\n", group)
}

func (m *Main) printHelp() {
	fmt.Fprintln(m.Stdout, "gatehouse — permissions and guardrails for AI assistants")
	fmt.Fprintln(m.Stdout, "\nusage: gatehouse [global flags] COMMAND [flags]\n\ncommands:")
	printCommands(m.Stdout, sortedCommands(""))
	fmt.Fprintln(m.Stdout, "\nglobal flags, accepted before or after the command:")
	fs, _ := m.flagSet(&command{})
	printFlags(m.Stdout, fs, isGlobal)
	fmt.Fprintln(m.Stdout, "\nrun 'gatehouse help COMMAND' for a command's flags; 'gatehouse --version' for the build")
	fmt.Fprintln(m.Stdout, "exit status: 0 ok, 1 internal error, 2 usage or input error, 3 check denied")
}

func (m *Main) printCommandHelp(cmd *command) {
	fmt.Fprintf(m.Stdout, "usage: gatehouse %s %s\n\n%s\n", cmd.name, cmd.usage, cmd.summary)
	fs, own := m.flagSet(cmd)
	if len(own) > 0 {
		fmt.Fprintln(m.Stdout, "\nflags:")
		printFlags(m.Stdout, fs, func(name string) bool { return own[name] })
	}
	fmt.Fprintln(m.Stdout, "\nglobal flags:")
	printFlags(m.Stdout, fs, func(name string) bool { return !own[name] })
}

// printFlags lists the flags of fs that include picks, GNU-style: --name
// ARG, or -f ARG for a one-letter name.
func printFlags(w io.Writer, fs *flag.FlagSet, include func(string) bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		if !include(f.Name) {
			return
		}
		arg, usage := flag.UnquoteUsage(f)
		left := "--" + f.Name
		if len(f.Name) == 1 {
			left = "-" + f.Name
		}
		if arg != "" {
			left += " " + arg
		}
		switch def := f.DefValue; {
		case def == "", def == "false", def == "0", def == "0s", def == "[]":
		case fmt.Sprintf("%T", f.Value) == "*flag.stringValue":
			usage += fmt.Sprintf(" (default %q)", def)
		default:
			usage += fmt.Sprintf(" (default %s)", def)
		}
		fmt.Fprintf(tw, "  %s\t%s\n", left, usage)
	})
	tw.Flush()
}
