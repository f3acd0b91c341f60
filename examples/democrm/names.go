package democrm

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"unicode"
)

var firstNames = []string{
	"Ada", "Alan", "Barbara", "Claude", "Donald", "Edsger", "Frances", "Grace",
	"Hedy", "John", "Katherine", "Ken", "Leslie", "Margaret", "Niklaus", "Radia",
	"Rob", "Shafi", "Tim", "Whitfield",
}

var lastNames = []string{
	"Lovelace", "Turing", "Liskov", "Shannon", "Knuth", "Dijkstra", "Allen",
	"Hopper", "Lamarr", "Backus", "Johnson", "Thompson", "Lamport", "Hamilton",
	"Wirth", "Perlman", "Pike", "Goldwasser", "Berners-Lee", "Diffie",
}

var companies = []string{
	"Analytical Engines", "Bletchley Works", "Difference Labs", "Babbage & Co",
	"Punch Card Partners", "Vacuum Tube Supply", "Relay Logic", "Core Memory Inc",
	"Ferrite Systems", "Transistor Traders",
}

// domains[0] is the domain of new contacts; edits move to another.
var domains = []string{"example.com", "example.org", "example.net", "mail.example.com"}

// pick returns a random element of list.
func pick(r *rand.Rand, list []string) string {
	return list[r.IntN(len(list))]
}

// pickOther returns a random element of list other than not.
func pickOther(r *rand.Rand, list []string, not string) string {
	for {
		if s := pick(r, list); s != not {
			return s
		}
	}
}

// email makes an address such as ada.lovelace42@example.com.
func email(first, last string, id int, domain string) string {
	local := slug(first)
	if l := slug(last); l != "" {
		local += "." + l
	}
	if local == "" {
		local = "contact"
	}
	return local + strconv.Itoa(id) + "@" + domain
}

// slug keeps the ASCII letters and digits of s, lowercased.
func slug(s string) string {
	return strings.Map(func(r rune) rune {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}
