/**
 * The "Verify identity" button: an accessible consent modal, then the plugin's REST route, then
 * Persona (embedded client or hosted flow). No build step, no dependencies.
 *
 * The page's state always comes from the bridge (rendered by PHP, or read again through the
 * plugin's /status route); Persona's browser callbacks only change what is shown meanwhile.
 */
( function () {
	'use strict';

	var BOXES = [ 'share_with_persona', 'persona_retention', 'gdpr_processing' ];
	var FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select, textarea, [tabindex]:not([tabindex="-1"])';
	var scriptPromise = null;

	function loadPersona( url ) {
		if ( window.Persona && window.Persona.Client ) {
			return Promise.resolve( window.Persona );
		}
		if ( ! scriptPromise ) {
			scriptPromise = new Promise( function ( resolve, reject ) {
				var script = document.createElement( 'script' );
				script.src = url;
				script.async = true;
				script.crossOrigin = 'anonymous';
				script.onload = function () {
					if ( window.Persona && window.Persona.Client ) {
						resolve( window.Persona );
					} else {
						reject( new Error( 'Persona client missing' ) );
					}
				};
				script.onerror = function () {
					scriptPromise = null;
					reject( new Error( 'Persona client failed to load' ) );
				};
				document.head.appendChild( script );
			} );
		}
		return scriptPromise;
	}

	function init( root ) {
		var config = JSON.parse( root.getAttribute( 'data-kycb' ) || '{}' );
		var opener = root.querySelector( '.kycb-open' );
		var backdrop = root.querySelector( '.kycb-backdrop' );
		if ( ! opener || ! backdrop ) {
			return;
		}
		var dialog = backdrop.querySelector( '[role="dialog"]' );
		var form = dialog.querySelector( 'form' );
		var submit = form.querySelector( '.kycb-submit' );
		var cancel = form.querySelector( '.kycb-cancel' );
		var errorBox = form.querySelector( '.kycb-error' );
		var label = root.querySelector( '.kycb-status-label' );
		var message = root.querySelector( '.kycb-status-message' );
		var boxes = BOXES.map( function ( name ) {
			return form.querySelector( 'input[name="' + name + '"]' );
		} );

		function allTicked() {
			return boxes.every( function ( box ) {
				return box && box.checked;
			} );
		}

		function update() {
			var ready = allTicked();
			submit.disabled = ! ready;
			submit.setAttribute( 'aria-disabled', String( ! ready ) );
		}

		function showError( text ) {
			errorBox.textContent = text;
			errorBox.hidden = ! text;
		}

		// A null or empty label keeps the bold status label: a failed or cancelled start changes
		// the message only, never what the person's state is.
		function setState( labelText, messageText ) {
			if ( label && typeof labelText === 'string' && labelText !== '' ) {
				label.textContent = labelText;
			}
			if ( message && typeof messageText === 'string' ) {
				message.textContent = messageText;
			}
		}

		function open() {
			backdrop.hidden = false;
			document.body.classList.add( 'kycb-modal-open' );
			update();
			boxes[ 0 ].focus();
		}

		function close() {
			backdrop.hidden = true;
			document.body.classList.remove( 'kycb-modal-open' );
			opener.focus();
		}

		function trap( event ) {
			if ( event.key === 'Escape' || event.key === 'Esc' ) {
				event.preventDefault();
				close();
				return;
			}
			if ( event.key !== 'Tab' ) {
				return;
			}
			var items = Array.prototype.filter.call( dialog.querySelectorAll( FOCUSABLE ), function ( el ) {
				return el.offsetParent !== null;
			} );
			if ( ! items.length ) {
				return;
			}
			var first = items[ 0 ];
			var last = items[ items.length - 1 ];
			if ( event.shiftKey && document.activeElement === first ) {
				event.preventDefault();
				last.focus();
			} else if ( ! event.shiftKey && document.activeElement === last ) {
				event.preventDefault();
				first.focus();
			}
		}

		// After Persona says it is done: show "checking", then ask the bridge (through WordPress).
		function afterCompletion() {
			opener.hidden = true;
			setState( null, config.i18n.checking );
			if ( ! config.statusUrl ) {
				return;
			}
			var tries = 0;
			function poll() {
				tries += 1;
				fetch( config.statusUrl, { credentials: 'same-origin', headers: { 'X-WP-Nonce': config.nonce } } )
					.then( function ( response ) {
						return response.ok ? response.json() : null;
					} )
					.then( function ( state ) {
						// Before the webhook arrives the bridge still says created/pending: keep "checking".
						if ( state && [ 'not_started', 'created', 'pending' ].indexOf( state.status ) === -1 ) {
							root.setAttribute( 'data-status', state.status );
							setState( state.label, state.message );
						} else if ( tries < 5 ) {
							window.setTimeout( poll, 3000 );
						}
					} )
					.catch( function () {} );
			}
			window.setTimeout( poll, 2000 );
		}

		// The bridge answers the hosted flow's kebab keys (name-first); Persona's JS client
		// documents camelCase ones (nameFirst).
		function camelFields( fields ) {
			var out = {};
			Object.keys( fields || {} ).forEach( function ( key ) {
				out[ key.replace( /[-_]([a-z0-9])/g, function ( match, letter ) {
					return letter.toUpperCase();
				} ) ] = fields[ key ];
			} );
			return out;
		}

		function startPersona( flow ) {
			if ( flow.flow === 'hosted' ) {
				window.location.assign( flow.hosted_url );
				return;
			}
			loadPersona( config.personaScript ).then( function ( Persona ) {
				var options = {
					environmentId: flow.environment_id || undefined,
					fields: camelFields( flow.fields ),
					onReady: function () {
						client.open();
					},
					onComplete: function () {
						afterCompletion();
					},
					onCancel: function () {
						setState( null, config.i18n.cancelled );
					},
					onError: function () {
						setState( null, config.i18n.failed );
					}
				};
				if ( flow.inquiry_id ) {
					options.inquiryId = flow.inquiry_id;
					if ( flow.session_token ) {
						options.sessionToken = flow.session_token;
					}
				} else {
					options.templateId = flow.template_id;
					options.referenceId = flow.reference_id;
				}
				var client = new Persona.Client( options );
			} ).catch( function () {
				setState( null, config.i18n.loadError );
			} );
		}

		function send( event ) {
			event.preventDefault();
			if ( ! allTicked() ) {
				update();
				return;
			}
			showError( '' );
			submit.disabled = true;
			submit.setAttribute( 'aria-busy', 'true' );
			var consent = { text_version: form.querySelector( 'input[name="text_version"]' ).value };
			BOXES.forEach( function ( name ) {
				consent[ name ] = true;
			} );
			var body = { user_type: config.type, consent: consent };
			if ( config.link ) {
				body.link_token = config.link;
			}
			fetch( config.rest, {
				method: 'POST',
				credentials: 'same-origin',
				headers: { 'Content-Type': 'application/json', 'X-WP-Nonce': config.nonce },
				body: JSON.stringify( body )
			} ).then( function ( response ) {
				return response.json().catch( function () {
					return {};
				} ).then( function ( data ) {
					return { ok: response.ok, data: data };
				} );
			} ).then( function ( answer ) {
				submit.removeAttribute( 'aria-busy' );
				if ( ! answer.ok ) {
					showError( ( answer.data && answer.data.message ) || config.i18n.failed );
					update();
					return;
				}
				backdrop.hidden = true;
				document.body.classList.remove( 'kycb-modal-open' );
				setState( null, config.i18n.starting );
				startPersona( answer.data );
			} ).catch( function () {
				submit.removeAttribute( 'aria-busy' );
				showError( config.i18n.failed );
				update();
			} );
		}

		boxes.forEach( function ( box ) {
			box.addEventListener( 'change', update );
		} );
		opener.addEventListener( 'click', open );
		cancel.addEventListener( 'click', close );
		dialog.addEventListener( 'keydown', trap );
		backdrop.addEventListener( 'click', function ( event ) {
			if ( event.target === backdrop ) {
				close();
			}
		} );
		form.addEventListener( 'submit', send );
		update();
	}

	function boot() {
		Array.prototype.forEach.call( document.querySelectorAll( '.kycb-verify[data-kycb]' ), init );
	}

	if ( document.readyState === 'loading' ) {
		document.addEventListener( 'DOMContentLoaded', boot );
	} else {
		boot();
	}
}() );
