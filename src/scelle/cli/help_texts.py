"""Every `--help` text of the command, for the catalogue (written by scripts/help-texts;
tests/test_translations.py checks it is current)."""

from scelle.i18n import gettext_noop

HELP_TEXTS = (
    gettext_noop(
        "Scellé: sealed bids for public procurement.\n\nKey pairs live in this workstation's store ($SCELLE_HOME); envelopes are\nCMS files (AES-256-GCM, RSA-OAEP) that OpenSSL also opens."
    ),
    gettext_noop("Show the traceback of errors."),
    gettext_noop("Show the version and exit."),
    gettext_noop("Set up the platform: organisations, services, users; check the audit log."),
    gettext_noop(
        "Check the audit log: its hash chain, its signed checkpoints, and receipts if given."
    ),
    gettext_noop(
        "The platform's data folder (default: $SCELLE_DATA_DIR, else ./scelle-data). SCELLE_DATABASE_URL=postgresql://… puts the database in PostgreSQL."
    ),
    gettext_noop("A folder of deposit receipts (receipt-*.json) to check the log against too."),
    gettext_noop(
        "Write the whole platform to ARCHIVE while it runs: database, envelopes (from the\nfolder or the object store) and the platform's keys. The archive is 0600 and as\nsecret as the keys folder."
    ),
    gettext_noop("Sign a checkpoint of the audit log's head now (`scelle serve` does it hourly)."),
    gettext_noop("Create a public buyer or a bidding company."),
    gettext_noop("Create a service of a buyer organisation."),
    gettext_noop("Create a user (an agent of a buyer, or a company's user)."),
    gettext_noop("The user's organisation."),
    gettext_noop("Read the user's password from the first line of this file."),
    gettext_noop("The service the permissions apply to."),
    gettext_noop("A permission on --service; repeat for more."),
    gettext_noop(
        "Create a platform in the data folder (database and keys), as `scelle serve` does."
    ),
    gettext_noop("List organisations, their services, users and permissions."),
    gettext_noop("Machine-readable output."),
    gettext_noop(
        "Restore ARCHIVE (made by `scelle admin backup`) onto a fresh platform here, with\nthe same database engine: envelopes checked one by one, then the database, then the\nkeys."
    ),
    gettext_noop(
        "The object store of SCELLE_STORAGE_URL (s3://bucket/prefix), when envelopes go\nthere rather than to the data folder."
    ),
    gettext_noop(
        "Check that envelopes can be stored: the object store answers and has Object Lock\n(or the data folder, when SCELLE_STORAGE_URL is not set)."
    ),
    gettext_noop(
        "Create the bucket with Object Lock (envelopes under retention nobody can delete),\nthen check it."
    ),
    gettext_noop(
        "Remove uploads that will never become deposits (idle, or to a closed tender), and\ntest deposits whose time is up."
    ),
    gettext_noop("Your organisation's agents and their permissions (needs `administer`)."),
    gettext_noop("Create an agent of your organisation (no permission yet)."),
    gettext_noop("Read the agent's first password from the first line of this file."),
    gettext_noop(
        "Deactivate an agent who leaves: logins and tokens stop working; nothing is deleted."
    ),
    gettext_noop("Give an agent a permission on a service."),
    gettext_noop("The service, which you administer."),
    gettext_noop("List the agents and their permissions on the services you administer."),
    gettext_noop("Take a permission back."),
    gettext_noop(
        "Run the assistant the platform's pages give work to (Traitements distants).\n\nIt logs in as `scelle login` did, asks the platform for jobs (it never listens\nfor it), adds key pairs to this workstation's store and opens tenders'\nenvelopes into the openings folder. Stop it with Ctrl-C."
    ),
    gettext_noop("This workstation's name on the pages (kept)."),
    gettext_noop("The folder where opened envelopes go (kept)."),
    gettext_noop("Do not open the assistant's window; print its address only."),
    gettext_noop(
        "A PKCS#11 token (pkcs11:token=…) whose key pairs it uses and where it makes new ones (kept)."
    ),
    gettext_noop("Forget the token: the store alone (kept)."),
    gettext_noop(
        "Take the store passphrase from the system's keyring (asked once, then kept there)."
    ),
    gettext_noop(
        "Open the envelope IN (a file, or - for stdin).\n\nThe output appears only once the envelope has verified: nothing is left\nbehind when it fails."
    ),
    gettext_noop("A key pair of the store (default: try every one); repeat for more."),
    gettext_noop("Use the key pair of this .pfx file instead of the store."),
    gettext_noop("With --pfx: read its password from the first line of this file."),
    gettext_noop("The file to write (default: IN without .p7m; - for stdout)."),
    gettext_noop("Overwrite the output file."),
    gettext_noop(
        "A PKCS#11 token (pkcs11:token=…): its key pairs beside the store's (default: $SCELLE_TOKEN)."
    ),
    gettext_noop(
        "Seal the envelopes on this machine and deposit them to the tender REFERENCE.\n\nBefore sending, it shows the recipient-set fingerprint (RSF) of the\ncertificates it encrypts to: compare it with the tender notice. Run it\nagain after an interruption: it continues where the upload stopped, and\nfetches the receipt again if the platform recorded the deposit."
    ),
    gettext_noop(
        "An envelope (candidature, offre, anonymat) and the file or folder it holds; one per envelope of the tender."
    ),
    gettext_noop("Where to write the receipt (default: ./receipt-<deposit id>.json)."),
    gettext_noop(
        "The recipient-set fingerprint printed in the tender notice: nothing is sent when the tender's recipients give another."
    ),
    gettext_noop(
        "First register the SHA-256 of each sealed envelope (a small request; the envelopes are sealed once more to hash them): a signed, timestamped commitment receipt, saved beside the receipt, to prove what you were sending if the upload is late."
    ),
    gettext_noop(
        "Also write a proof kit (dossier de preuve) there: the receipt and each envelope's content key, sealed under a password you choose. With it and the stored envelope, `scelle proof verify` shows what the envelope held, without any buyer key. Keep it to yourself."
    ),
    gettext_noop("With --proof-kit: read its password from the first line of this file."),
    gettext_noop("Your company's deposits."),
    gettext_noop("List your company's deposits, with their state and receipt ids."),
    gettext_noop("Fetch the signed receipt of one of your deposits again, and check it."),
    gettext_noop("Where to write it (default: ./receipt-<deposit id>.json)."),
    gettext_noop("Replace the file if it exists."),
    gettext_noop(
        "Withdraw one of your deposits before the deadline (retrait): it will not be opened.\n\nThe platform signs a withdrawal receipt, logged in its transparency log; it is\nchecked, then saved. Your other deposits to the tender stay as they are."
    ),
    gettext_noop(
        "Where to write the withdrawal receipt (default: ./withdrawal-<deposit id>.json)."
    ),
    gettext_noop("Withdraw without asking to confirm."),
    gettext_noop("Seal IN (a file, or - for stdin) into an envelope for each RECIPIENT."),
    gettext_noop(
        "A certificate file (PEM or DER) or a key pair name of the store; repeat for more."
    ),
    gettext_noop("The envelope to write (default: IN.p7m; - for stdout)."),
    gettext_noop("Generate, list, export, import and delete key pairs (bi-clés)."),
    gettext_noop("Print or write the certificate of a key pair (PEM)."),
    gettext_noop("File."),
    gettext_noop("Delete a key pair from this workstation's store, for good."),
    gettext_noop("Do not ask for confirmation."),
    gettext_noop("Export a key pair, private key included, to a password-protected .pfx."),
    gettext_noop("The .pfx file to write."),
    gettext_noop("3DES/SHA-1 for Windows before 10 1709 and Java 8."),
    gettext_noop("Read the password from the first line of this file."),
    gettext_noop(
        "Generate a key pair in this workstation's store (self-signed certificate).\n\nWith --token, the key pair is made on the token, which it never leaves. With\n--publish, the platform CA then certifies it for one of your services."
    ),
    gettext_noop("Common Name of the certificate (default: the name)."),
    gettext_noop("RSA key size."),
    gettext_noop("Validity of the certificate."),
    gettext_noop("Then publish it on the platform."),
    gettext_noop("With --publish: as a backup key pair of the service."),
    gettext_noop("With --publish: its designation (default: the name)."),
    gettext_noop("With --publish: the service (default: your only one)."),
    gettext_noop("Import a key pair from a .pfx / .p12 file."),
    gettext_noop("Name in the store (default: the file's friendly name, or CN)."),
    gettext_noop("Refuse any later export of this key pair."),
    gettext_noop("List the key pairs of this workstation's store."),
    gettext_noop("Publish a key pair of the store on the platform, for one of your services."),
    gettext_noop("A backup key pair of the service."),
    gettext_noop("Its designation on the platform (default: the name)."),
    gettext_noop("The service (default: your only one with manage_keys)."),
    gettext_noop("Reference the existing certificate instead of having the platform CA issue one."),
    gettext_noop("Show one key pair."),
    gettext_noop(
        "Log in to the platform at URL; the token is kept in this workstation's $SCELLE_HOME."
    ),
    gettext_noop("Your e-mail address on the platform."),
    gettext_noop("Revoke this workstation's token and forget it."),
    gettext_noop(
        "Open the deposits of a tender on this workstation, after its deadline.\n\nEach company's last deposit on time is opened (late ones with\n--include-late) into OUT/<company>/<deposit>/<envelope>/. An envelope\nthat fails is reported and the others still open; run the command again\nto retry: what was opened is kept. For a tender a commission opens, a\nmember's workstation opens as the opener: the other members take part\nwith `scelle take-part`, and each envelope opens once k shares are in."
    ),
    gettext_noop("Where the opened envelopes go (default: ./plis-REFERENCE)."),
    gettext_noop("Open only this envelope (candidature, offre, anonymat); repeat for more."),
    gettext_noop("A key pair of the store (default: try every one)."),
    gettext_noop(
        "Companies: open your own deposit to the platform's test tender with the key pair it publishes."
    ),
    gettext_noop("Open late deposits too."),
    gettext_noop("A commission's opener: how long to wait for the other members to take part."),
    gettext_noop("Proof kits (dossiers de preuve): what a deposited envelope held."),
    gettext_noop(
        "Show that ENVELOPE, as the platform stored it, is the one the kit's receipt names\n(its SHA-256), and list the files it decrypts to with the content key the company\nkept in the proof KIT: no buyer key is needed.\n\nThe receipt's signature is checked, and its CA compared with the one saved at login\nwhen this workstation has one."
    ),
    gettext_noop("Read the proof kit's password from the first line of this file."),
    gettext_noop(
        "Also write the envelope's files into this new folder, once every one checked out."
    ),
    gettext_noop("Deposit receipts (accusés de réception)."),
    gettext_noop(
        "Check receipts offline: signature, platform certificate, envelope hashes, and the\nproof that the platform's transparency log holds each one.\n\nThe CA is compared with the one saved at login when this workstation has one.\nWith several files, each is checked and named; the command fails if one fails."
    ),
    gettext_noop(
        "Also ask the platform for its transparency log now: it must still hold each receipt's tree, and the tree this workstation saw last."
    ),
    gettext_noop(
        "A witness that must have cosigned a tree holding the receipt (its key, as `scelle witness key` prints it; repeat for several). Implies --online."
    ),
    gettext_noop("Run the platform (SQLite and a local folder unless SCELLE_DATABASE_URL is set)."),
    gettext_noop("Address to listen on."),
    gettext_noop("Port to listen on (0: any free port)."),
    gettext_noop("Requests served at once."),
    gettext_noop(
        "Serving processes sharing the port, each with its threads (0: one per core; several need a POSIX system)."
    ),
    gettext_noop("The key pairs of your services on the platform (the key page)."),
    gettext_noop(
        "Remove a key pair from the platform (refused while a tender not closed uses it)."
    ),
    gettext_noop("The service (default: your only one)."),
    gettext_noop("List the key pairs of your services, with the tenders that use them."),
    gettext_noop("Change the designation of a key pair on the platform."),
    gettext_noop(
        "Take part in the opening of a tender a commission opens, as one of its members.\n\nAfter the deadline, once another member started the opening: this workstation reads\neach envelope's recipients only, decrypts your share of its key, and sends it\nencrypted to the opener's certificate (a member's, as the tender was launched), never\nto a key the platform names. Nothing is opened here."
    ),
    gettext_noop("Tenders (consultations): create, launch with their key pairs, list, close."),
    gettext_noop("Stop a launched tender before its deadline: it takes no deposit any more."),
    gettext_noop("Why the tender stops early (kept in the audit log)."),
    gettext_noop("Close a tender after its deadline; its key pairs may then be deleted."),
    gettext_noop("Create a draft tender."),
    gettext_noop("The tender's reference, unique on the platform."),
    gettext_noop("The tender's title."),
    gettext_noop("Deposit deadline, ISO 8601; without an offset, in the platform's time zone."),
    gettext_noop("Envelope kinds, comma-separated: candidature, offre, anonymat."),
    gettext_noop(
        "Only where the law provides it (Spain: 1440): a deposit completed this long after the deadline is on time when it matches a commitment made before it. Off by default, as French law accepts only what arrives before the deadline."
    ),
    gettext_noop("Who deposited to a tender, when, sizes, late or not (never the content)."),
    gettext_noop(
        "Publish a draft tender; its key pairs become definitive.\n\nThis workstation checks that the personal key pairs assigned are ones its\nstore holds, and keeps the tender's recipient set for the opening."
    ),
    gettext_noop(
        "A personal key pair of the service, by its designation, its CN or its name in this workstation's store; repeat for more. Backup key pairs are added."
    ),
    gettext_noop(
        "A commission opens the offers: the key pairs given with --key are its members, each held by another agent allowed to open, and K of them must take part."
    ),
    gettext_noop("List the tenders you can see."),
    gettext_noop(
        "Print the text to publish in the tender notice (BOAMP, JOUE): the key pairs'\nfingerprints and the recipient-set fingerprint companies check."
    ),
    gettext_noop("Show a tender, with its key pairs and their fingerprints."),
    gettext_noop(
        "Witness a platform's transparency log: check it only grows, and cosign it.\n\nRun by someone other than the platform (a prefecture, a federation of companies):\ncompanies can then require that a witness they trust saw the same log as they did."
    ),
    gettext_noop(
        "Make this workstation's witness key (once), and print it for platforms and\ncompanies: they name the witness by it."
    ),
    gettext_noop("The witness's name, such as prefecture.example/witness."),
    gettext_noop(
        "Follow the platform's log at URL: cosign each new checkpoint that extends the\nlast one cosigned; stop, showing both checkpoints, if the log ever contradicts itself."
    ),
    gettext_noop(
        "The log's key, as the platform's operator publishes it (also at URL/log/key); needed the first time only: the witness then keeps it."
    ),
    gettext_noop("Seconds between two looks at the log."),
    gettext_noop("Look once, then stop."),
)

COMMAND_HELP = {
    "admin": "Set up the platform: organisations, services, users; check the audit log.",
    "agents": "Your organisation's agents and their permissions (needs `administer`).",
    "assistant": "Run the assistant the platform's pages give work to (Traitements distants).\n\nIt logs in as `scelle login` did, asks the platform for jobs (it never listens\nfor it), adds key pairs to this workstation's store and opens tenders'\nenvelopes into the openings folder. Stop it with Ctrl-C.",
    "decrypt": "Open the envelope IN (a file, or - for stdin).\n\nThe output appears only once the envelope has verified: nothing is left\nbehind when it fails.",
    "deposit": "Seal the envelopes on this machine and deposit them to the tender REFERENCE.\n\nBefore sending, it shows the recipient-set fingerprint (RSF) of the\ncertificates it encrypts to: compare it with the tender notice. Run it\nagain after an interruption: it continues where the upload stopped, and\nfetches the receipt again if the platform recorded the deposit.",
    "deposits": "Your company's deposits.",
    "encrypt": "Seal IN (a file, or - for stdin) into an envelope for each RECIPIENT.",
    "keys": "Generate, list, export, import and delete key pairs (bi-clés).",
    "login": "Log in to the platform at URL; the token is kept in this workstation's $SCELLE_HOME.",
    "logout": "Revoke this workstation's token and forget it.",
    "open": "Open the deposits of a tender on this workstation, after its deadline.\n\nEach company's last deposit on time is opened (late ones with\n--include-late) into OUT/<company>/<deposit>/<envelope>/. An envelope\nthat fails is reported and the others still open; run the command again\nto retry: what was opened is kept. For a tender a commission opens, a\nmember's workstation opens as the opener: the other members take part\nwith `scelle take-part`, and each envelope opens once k shares are in.",
    "proof": "Proof kits (dossiers de preuve): what a deposited envelope held.",
    "receipts": "Deposit receipts (accusés de réception).",
    "serve": "Run the platform (SQLite and a local folder unless SCELLE_DATABASE_URL is set).",
    "service-keys": "The key pairs of your services on the platform (the key page).",
    "take-part": "Take part in the opening of a tender a commission opens, as one of its members.\n\nAfter the deadline, once another member started the opening: this workstation reads\neach envelope's recipients only, decrypts your share of its key, and sends it\nencrypted to the opener's certificate (a member's, as the tender was launched), never\nto a key the platform names. Nothing is opened here.",
    "tenders": "Tenders (consultations): create, launch with their key pairs, list, close.",
    "witness": "Witness a platform's transparency log: check it only grows, and cosign it.\n\nRun by someone other than the platform (a prefecture, a federation of companies):\ncompanies can then require that a witness they trust saw the same log as they did.",
}
"""Each command's help, from which `scelle --help` lists it without loading it."""
