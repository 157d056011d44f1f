"""French and English for the command's own words.

The language comes from `SCELLE_LANG`, else the usual locale variables; French
when they start with "fr", English otherwise. Messages are written in English
in the code and looked up in the French catalogue below.
"""

from __future__ import annotations

import os
from functools import cache

_FRENCH: dict[str, str] = {
    # keys generate / import
    "Generating an RSA-{bits} key pair…": "Génération d'un bi-clé RSA-{bits}…",
    "The key pair {name} has been created and saved in this workstation's store.": (
        "Le bi-clé {name} a été créé et enregistré dans le magasin de certificats de ce poste."
    ),
    "The key pair {name} has been imported into this workstation's store.": (
        "Le bi-clé {name} a été importé dans le magasin de certificats de ce poste."
    ),
    "Issued to (CN)": "Délivré à (CN)",
    "Issued by": "Délivré par",
    "Expires": "Expire le",
    "Exportable": "Exportable",
    "Name": "Nom",
    "SHA-256 fingerprint": "Empreinte SHA-256",
    "Serial number": "Numéro de série",
    "Key": "Clé",
    "Origin": "Origine",
    "generated": "généré",
    "imported": "importé",
    "yes": "oui",
    "no": "non",
    "Valid from": "Valide à partir du",
    "Chain": "Chaîne",
    "No key pair in this workstation's store ({home}).": (
        "Aucun bi-clé dans le magasin de certificats de ce poste ({home})."
    ),
    # export
    "The key pair {name} has been exported to {path}.": (
        "Le bi-clé {name} a été exporté dans {path}."
    ),
    "Keep the password safe: there is no way to recover it, and without it the file "
    "cannot be opened.": (
        "Conservez le mot de passe : il ne peut pas être récupéré, et sans lui le fichier "
        "ne peut pas être ouvert."
    ),
    "Note: Java's keytool cannot open a .pfx whose password has non-ASCII characters.": (
        "Remarque : keytool (Java) ne peut pas ouvrir un .pfx dont le mot de passe contient "
        "des caractères non ASCII."
    ),
    "Password protecting {path}": "Mot de passe protégeant {path}",
    "Password of {path}": "Mot de passe de {path}",
    "Repeat the password": "Répétez le mot de passe",
    "The two passwords differ.": "Les deux mots de passe diffèrent.",
    # store passphrase
    "New passphrase of this workstation's store": (
        "Nouvelle phrase de passe du magasin de certificats de ce poste"
    ),
    "Passphrase of this workstation's store": (
        "Phrase de passe du magasin de certificats de ce poste"
    ),
    # delete
    "Delete the key pair {name} ({cn}, expires {expires})? Envelopes sealed only to it "
    "could never be opened again.": (
        "Supprimer le bi-clé {name} ({cn}, expire le {expires}) ? Les plis chiffrés pour lui "
        "seul ne pourraient plus jamais être ouverts."
    ),
    "The key pair {name} has been deleted from this workstation's store.": (
        "Le bi-clé {name} a été supprimé du magasin de certificats de ce poste."
    ),
    "Nothing deleted.": "Rien n'a été supprimé.",
    # encrypt / decrypt
    "Encrypting": "Chiffrement",
    "Decrypting": "Déchiffrement",
    "Encrypted for {count} recipient(s): {path}": "Chiffré pour {count} destinataire(s) : {path}",
    "Decrypted: {path}": "Déchiffré : {path}",
    # the platform: serve and admin
    "Scellé platform running on {url} (Ctrl+C to stop).": (
        "Plateforme Scellé en service sur {url} (Ctrl+C pour l'arrêter)."
    ),
    "Created the platform's certificate authority and receipt-signing key.": (
        "Autorité de certification de la plateforme et clé de signature des accusés de "
        "réception créées."
    ),
    "No organisation yet: create one with `scelle admin create-organisation`.": (
        "Aucune organisation pour l'instant : créez-en une avec `scelle admin create-organisation`."
    ),
    "Organisation {name} created ({kind}).": "Organisation {name} créée ({kind}).",
    "Service {name} created.": "Service {name} créé.",
    "User {email} created in {organisation}.": "Utilisateur {email} créé dans {organisation}.",
    # the recipient-set fingerprint
    "Recipient-set fingerprint: {rsf}": "Empreinte de l'ensemble des destinataires : {rsf}",
    "Recipient set": "Destinataires",
    "Warning: the personal key pair {designation} is not in this workstation's "
    "store: Scellé cannot vouch that it is your service's own.": (
        "Attention : le bi-clé personnel {designation} n'est pas dans le magasin de "
        "certificats de ce poste : Scellé ne peut pas garantir qu'il est celui de votre service."
    ),
    "Publish the notice text in the tender notice (`scelle tenders notice {reference}`): "
    "companies check the fingerprint before they deposit.": (
        "Publiez le texte d'avis dans l'avis de marché (`scelle tenders notice {reference}`) : "
        "les entreprises vérifient l'empreinte avant de déposer."
    ),
    "Electronic deposit of offers for {reference} ({title}): offers are encrypted on "
    "the company's computer for the buyer's encryption key pairs below, and stay "
    "unreadable, by the platform too, until they are opened after the deadline.": (
        "Dépôt électronique des plis pour la consultation {reference} ({title}) : les plis "
        "sont chiffrés sur l'ordinateur de l'entreprise pour les bi-clés de chiffrement de "
        "l'acheteur ci-dessous, et restent illisibles, y compris pour la plateforme, jusqu'à "
        "leur ouverture après la date limite."
    ),
    "Before depositing, check that your deposit tool shows this fingerprint "
    '(scelle deposit {reference} --expect-rsf "{rsf}"); if it differs, do not deposit '
    "and tell the buyer.": (
        "Avant de déposer, vérifiez que votre outil de dépôt affiche cette empreinte "
        '(scelle deposit {reference} --expect-rsf "{rsf}") ; si elle diffère, ne déposez pas '
        "et prévenez l'acheteur."
    ),
    "Sealing for {count} key pair(s) of the buyer:": (
        "Chiffrement pour {count} bi-clé(s) de l'acheteur :"
    ),
    "Check that the tender notice gives this fingerprint.": (
        "Vérifiez que l'avis de marché donne cette empreinte."
    ),
    "The platform had recorded this deposit: its receipt was fetched again.": (
        "La plateforme avait enregistré ce dépôt : son accusé de réception a été récupéré."
    ),
    "The receipt of deposit {deposit} is valid; saved in {path}": (
        "L'accusé de réception du dépôt {deposit} est valide ; enregistré dans {path}"
    ),
    "Audit log": "Journal d'audit",
    "encrypted to": "chiffré pour",
    "WARNING {bidder} — {kind} (deposit {deposit}): {problem}: {who}": (
        "ATTENTION {bidder} — {kind} (dépôt {deposit}) : {problem} : {who}"
    ),
    "encrypted to a recipient outside the tender's set": (
        "chiffré pour un destinataire hors de l'ensemble de la consultation"
    ),
    "WARNING: {message}": "ATTENTION : {message}",
    "Summary: {opened} opened, {already} already opened, {failed} failed, "
    "{outside} outside the tender's set.": (
        "Bilan : {opened} ouvert(s), {already} déjà ouvert(s), {failed} en échec, "
        "{outside} hors de l'ensemble des destinataires."
    ),
    "the opening found envelopes or key pairs outside the tender's set": (
        "l'ouverture a trouvé des plis ou des bi-clés hors de l'ensemble des destinataires"
    ),
    "The audit log holds: {count} events, chain intact.": (
        "Le journal d'audit est intègre : {count} événements, chaîne intacte."
    ),
    "Anchors checked: {checkpoints} signed checkpoints, {receipts} receipts; "
    "all agree with the log.": (
        "Ancres vérifiées : {checkpoints} points de contrôle signés, {receipts} accusés de "
        "réception ; tous concordent avec le journal."
    ),
    "Nothing new in the audit log since the last checkpoint.": (
        "Rien de nouveau dans le journal d'audit depuis le dernier point de contrôle."
    ),
    "Checkpoint #{id} signed at event #{sequence}.": (
        "Point de contrôle n° {id} signé à l'événement n° {sequence}."
    ),
    "Removed {idle} idle uploads, {closed} to tenders taking no deposit, "
    "{orphans} files belonging to nothing; {busy} receiving a chunk, left for later.": (
        "Supprimés : {idle} téléversements inactifs, {closed} vers des consultations qui "
        "ne reçoivent plus de plis, {orphans} fichiers orphelins ; {busy} en cours de "
        "réception, laissés pour plus tard."
    ),
    "Tender {reference} is cancelled: it takes no deposit any more. Its key pairs stay "
    "in use until you close it after its deadline.": (
        "La consultation {reference} est annulée : elle ne reçoit plus de plis. Ses bi-clés "
        "restent utilisés jusqu'à sa clôture après la date limite."
    ),
    "service": "service",
    "buyer": "entité publique",
    "bidder": "entreprise",
    # login
    "Password of {email} on {url}": "Mot de passe de {email} sur {url}",
    "Logged in to {url} as {email} ({organisation}); the login expires on {date}.": (
        "Connecté à {url} en tant que {email} ({organisation}) ; la connexion expire le {date}."
    ),
    "Logged out of {url}.": "Déconnecté de {url}.",
    "Warning: {message}; the token was only forgotten here.": (
        "Attention : {message} ; le jeton a seulement été oublié sur ce poste."
    ),
    "Warning: {message}": "Attention : {message}",
    # the service's key pairs
    "The key pair {name} is on the platform as {designation} ({role}, service {service}).": (
        "Le bi-clé {name} est sur la plateforme sous la désignation {designation} "
        "({role}, service {service})."
    ),
    "No key pair on the platform for your services yet.": (
        "Aucun bi-clé sur la plateforme pour vos services."
    ),
    "The key pair {old} is now designated {new}.": "Le bi-clé {old} est désormais désigné {new}.",
    "Remove the key pair {designation} ({cn}) from the platform?": (
        "Supprimer le bi-clé {designation} ({cn}) de la plateforme ?"
    ),
    "The key pair {designation} was removed from the platform.": (
        "Le bi-clé {designation} a été supprimé de la plateforme."
    ),
    "Designation": "Désignation",
    "CN": "CN",
    "Role": "Rôle",
    "Open tenders": "Consultations en cours",
    "personal": "personnel",
    "backup": "secours",
    "expires": "expire le",
    "in this workstation's store": "dans le magasin de ce poste",
    # tenders
    "Draft tender {reference} created (deadline {deadline}); launch it with "
    "`scelle tenders launch {reference} --key DESIGNATION`.": (
        "Consultation {reference} créée en brouillon (date limite {deadline}) ; lancez-la avec "
        "`scelle tenders launch {reference} --key DÉSIGNATION`."
    ),
    "Tender {reference} is published. Its key pairs, definitive:": (
        "La consultation {reference} est publiée. Ses bi-clés, définitifs :"
    ),
    "Tender {reference} is closed.": "La consultation {reference} est clôturée.",
    "No tender.": "Aucune consultation.",
    "Reference": "Référence",
    "Title": "Intitulé",
    "Service": "Service",
    "Deadline": "Date limite de remise des plis",
    "Status": "État",
    "Key pairs": "Bi-clés",
    "Key pairs:": "Bi-clés :",
    "Buyer": "Acheteur",
    "Opening window ends": "Fin de la période d'ouverture",
    "Envelopes": "Enveloppes",
    "draft": "brouillon",
    "published": "publiée",
    "closed": "clôturée",
    "cancelled": "annulée",
    "Reason for cancelling": "Motif de l'annulation",
    "{given}: the key pair designated {designation} on the platform": (
        "{given} : le bi-clé désigné {designation} dans la salle des marchés"
    ),
    "no platform in {folder} (no certificate authority in {keys})": (
        "aucune plateforme dans {folder} (pas d'autorité de certification dans {keys})"
    ),
    "Run this where `scelle serve` runs, pass --data or set SCELLE_DATA_DIR; "
    "`scelle admin init` creates a platform.": (
        "Lancez la commande là où tourne `scelle serve`, passez --data ou définissez "
        "SCELLE_DATA_DIR ; `scelle admin init` crée une plateforme."
    ),
    "A platform is already there: {folder}; brought up to date.": (
        "Une plateforme existe déjà : {folder} ; mise à jour faite."
    ),
    "Platform created in {folder}.": "Plateforme créée dans {folder}.",
    "{file}: {error}": "{file} : {error}",
    "{failed} of {count} receipts did not check out": (
        "{failed} accusés de réception sur {count} ne sont pas valides"
    ),
    "Id": "Identifiant",
    # deposits and receipts
    "Hashing": "Calcul des empreintes",
    "Sealing and sending": "Chiffrement et envoi",
    "Resuming the interrupted deposit where its upload stopped.": (
        "Reprise du dépôt interrompu là où son envoi s'était arrêté."
    ),
    "Interrupted: run the same command again to resume where the upload stopped.": (
        "Interrompu : relancez la même commande pour reprendre là où l'envoi s'est arrêté."
    ),
    "The files changed since the interrupted deposit: starting it again.": (
        "Les fichiers ont changé depuis le dépôt interrompu : il reprend depuis le début."
    ),
    " (late: after the deadline)": " (hors délai : après la date limite)",
    "Deposited to {tender} on {at}{late}; receipt: {path}": (
        "Pli déposé pour {tender} le {at}{late} ; accusé de réception : {path}"
    ),
    "No deposit yet.": "Aucun dépôt pour l'instant.",
    "Tender": "Consultation",
    "Received": "Reçu le",
    "State": "État",
    "Deposit (receipt id)": "Dépôt (n° d'accusé de réception)",
    "Deposit": "Dépôt",
    "Company": "Entreprise",
    "late": "hors délai",
    "on time": "dans les délais",
    "The receipt is valid: signed by {signer}.": (
        "L'accusé de réception est valide : signé par {signer}."
    ),
    "Platform CA": "AC de la plateforme",
    "Compare the platform CA's fingerprint with the one the platform publishes.": (
        "Comparez l'empreinte de l'AC de la plateforme avec celle qu'elle publie."
    ),
    # opening
    " (late)": " (hors délai)",
    "Opened {bidder} — {kind}{late}: {files} file(s) in {folder}": (
        "Ouvert : {bidder} — {kind}{late} : {files} fichier(s) dans {folder}"
    ),
    "Already opened: {bidder} — {kind} in {folder}": (
        "Déjà ouvert : {bidder} — {kind} dans {folder}"
    ),
    "FAILED {bidder} — {kind} (deposit {deposit}): {reason}": (
        "ÉCHEC {bidder} — {kind} (dépôt {deposit}) : {reason}"
    ),
    "No deposit to open.": "Aucun pli à ouvrir.",
    "{count} envelope(s) could not be opened": "{count} enveloppe(s) n'ont pas pu être ouvertes",
}


@cache
def language() -> str:
    for variable in ("SCELLE_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable)
        if value:
            return "fr" if value.lower().startswith("fr") else "en"
    return "en"


def _(message: str, /, **values: object) -> str:
    """`message` in the user's language, with `values` filled in."""
    text = _FRENCH.get(message, message) if language() == "fr" else message
    return text.format(**values) if values else text
