// turnclient.go -- an independent TURN client for turnstone's tests: pion/turn
// v2 (Debian's golang-github-pion-turn.v2-dev, built in GOPATH mode).
//
// Usage: turnclient SERVER:PORT USER PASSWORD REALM
// Allocates a UDP relay, relays datagrams both ways to a local peer (pion
// sends Send indications first and ChannelData once its ChannelBind is done)
// and checks payloads and the relayed source address. Prints TAP lines;
// exits 1 when a check fails. Every packet goes to 127.0.0.1.
package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v2"
)

var n, failed int

func ok(cond bool, what string, args ...interface{}) {
	n++
	if cond {
		fmt.Printf("ok %d - %s\n", n, fmt.Sprintf(what, args...))
		return
	}
	failed++
	fmt.Printf("not ok %d - %s\n", n, fmt.Sprintf(what, args...))
}

func bail(what string, err error) {
	fmt.Printf("Bail out! %s: %v\n", what, err)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: turnclient SERVER:PORT USER PASSWORD REALM")
		os.Exit(2)
	}
	server, user, pass, realm := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		bail("listen", err)
	}
	defer conn.Close()
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelWarn
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server, TURNServerAddr: server, Conn: conn,
		Username: user, Password: pass, Realm: realm, LoggerFactory: lf,
	})
	if err != nil {
		bail("client", err)
	}
	defer c.Close()
	if err = c.Listen(); err != nil {
		bail("client listen", err)
	}
	mapped, err := c.SendBindingRequest()
	ok(err == nil && mapped.String() == conn.LocalAddr().String(),
		"Binding: mapped address %v is the client's %v (err %v)", mapped, conn.LocalAddr(), err)

	relay, err := c.Allocate()
	if err != nil {
		bail("Allocate", err)
	}
	defer relay.Close()
	ok(true, "Allocate: relayed address %v", relay.LocalAddr())

	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		bail("peer", err)
	}
	defer peer.Close()

	buf := make([]byte, 1500)
	// Several rounds: the first ones go as Send/Data indications, later ones
	// as ChannelData once pion's ChannelBind has been answered.
	for i := 0; i < 6; i++ {
		out := []byte(fmt.Sprintf("to-peer-%d", i))
		if _, err = relay.WriteTo(out, peer.LocalAddr()); err != nil {
			ok(false, "round %d: WriteTo: %v", i, err)
			continue
		}
		_ = peer.SetReadDeadline(time.Now().Add(3 * time.Second))
		k, from, err := peer.ReadFrom(buf)
		ok(err == nil && bytes.Equal(buf[:k], out) && from.String() == relay.LocalAddr().String(),
			"round %d: peer got %q from %v (relay %v, err %v)", i, buf[:k], from, relay.LocalAddr(), err)
		if err != nil {
			continue
		}
		back := []byte(fmt.Sprintf("to-client-%d", i))
		if _, err = peer.WriteTo(back, from); err != nil {
			ok(false, "round %d: peer WriteTo: %v", i, err)
			continue
		}
		_ = relay.SetReadDeadline(time.Now().Add(3 * time.Second))
		k, src, err := relay.ReadFrom(buf)
		ok(err == nil && bytes.Equal(buf[:k], back) && src.String() == peer.LocalAddr().String(),
			"round %d: client got %q from %v (err %v)", i, buf[:k], src, err)
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Printf("1..%d\n", n)
	if failed > 0 {
		os.Exit(1)
	}
}
