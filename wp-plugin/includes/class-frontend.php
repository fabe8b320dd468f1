<?php
/**
 * The [kyc_verify] and [kyc_gate] shortcodes and the "KYC verification" block.
 *
 * @package KycBridge
 */

namespace KycBridge;

defined( 'ABSPATH' ) || exit;

/**
 * What visitors see: their KYC state, the verify button with the consent modal, gated content.
 */
final class Frontend {

	/**
	 * Query parameter that carries a bridge link token for visitors who are not logged in.
	 */
	const LINK_PARAM = 'kyc_link';

	/**
	 * Instance counter for unique element ids.
	 *
	 * @var int
	 */
	private static $instance = 0;

	/**
	 * Shortcodes, block, scripts (init).
	 */
	public static function register() {
		add_shortcode( 'kyc_verify', array( self::class, 'shortcode_verify' ) );
		add_shortcode( 'kyc_gate', array( self::class, 'shortcode_gate' ) );

		$url = plugins_url( 'assets/', KYCB_PLUGIN_FILE );
		wp_register_script( 'kycb-verify', $url . 'js/kyc-verify.js', array(), VERSION, true );
		wp_register_style( 'kycb-verify', $url . 'css/kyc-verify.css', array(), VERSION );
		wp_register_script( 'kycb-block-editor', $url . 'js/block-editor.js', array( 'wp-blocks', 'wp-element', 'wp-components', 'wp-block-editor', 'wp-i18n' ), VERSION, true );
		wp_set_script_translations( 'kycb-block-editor', 'kyc-bridge', KYCB_PLUGIN_DIR . 'languages' );

		register_block_type(
			KYCB_PLUGIN_DIR . 'blocks/verify',
			array(
				'render_callback' => array( self::class, 'render_block' ),
			)
		);
	}

	/**
	 * Persona's embedded client at the pinned version.
	 *
	 * @return string
	 */
	public static function persona_script_url() {
		$url = 'https://cdn.withpersona.com/dist/persona-v' . PERSONA_JS_VERSION . '.js';
		/**
		 * URL of Persona's embedded client (pinned by the plugin). Filter it to self-host a copy.
		 *
		 * @param string $url     CDN URL.
		 * @param string $version Pinned version.
		 */
		return (string) apply_filters( 'kycb_persona_script_url', $url, PERSONA_JS_VERSION );
	}

	/**
	 * The text shown instead of gated content when no message is configured.
	 *
	 * @return string
	 */
	public static function default_gate_message() {
		return __( 'This content is available once your identity is verified.', 'kyc-bridge' );
	}

	/**
	 * A user type from an attribute, or the default one.
	 *
	 * @param mixed $raw Attribute value.
	 * @return string
	 */
	public static function user_type( $raw ) {
		$type = sanitize_key( (string) $raw );
		return in_array( $type, Settings::USER_TYPES, true ) ? $type : Settings::get( 'user_type' );
	}

	/**
	 * A link token from the query string (itsdangerous tokens: URL-safe base64 and dots).
	 *
	 * @return string
	 */
	public static function link_token() {
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended, KycBridge.Security.NonceVerification.Recommended -- a signed token, checked by the bridge.
		$raw = isset( $_GET[ self::LINK_PARAM ] ) ? sanitize_text_field( wp_unslash( $_GET[ self::LINK_PARAM ] ) ) : '';
		return preg_match( '/^[A-Za-z0-9_.\-]{10,512}$/', $raw ) ? $raw : '';
	}

	/**
	 * [kyc_verify type="investor"].
	 *
	 * @param array|string $atts Attributes.
	 * @return string
	 */
	public static function shortcode_verify( $atts ) {
		$atts = shortcode_atts( array( 'type' => '' ), $atts, 'kyc_verify' );
		return self::render_verify( self::user_type( $atts['type'] ) );
	}

	/**
	 * Server-side rendering of the block.
	 *
	 * @param array $attributes Block attributes.
	 * @return string
	 */
	public static function render_block( $attributes ) {
		$type = isset( $attributes['userType'] ) ? $attributes['userType'] : '';
		return self::render_verify( self::user_type( $type ) );
	}

	/**
	 * [kyc_gate status="approved" type="investor" level="enhanced" message="…"]content[/kyc_gate].
	 *
	 * @param array|string $atts    Attributes.
	 * @param string|null  $content Enclosed content.
	 * @return string
	 */
	public static function shortcode_gate( $atts, $content = null ) {
		$atts = shortcode_atts(
			array(
				'status'  => 'approved',
				'type'    => '',
				'level'   => '',
				'message' => '',
			),
			$atts,
			'kyc_gate'
		);
		$args = array(
			'status' => $atts['status'],
			'type'   => $atts['type'],
			'level'  => $atts['level'],
		);
		if ( is_user_logged_in() && Kyc_Lookup::is_verified( get_current_user_id(), $args ) ) {
			// Wrapped like the locked state: a bare text node would sit outside a block theme's layout.
			return '<div class="kycb-gate kycb-gate--open">' . do_shortcode( shortcode_unautop( wpautop( (string) $content ) ) ) . '</div>';
		}
		$message = '' !== $atts['message'] ? $atts['message'] : Settings::get( 'gate_message' );
		if ( '' === $message ) {
			$message = self::default_gate_message();
		}
		$out  = '<div class="kycb-gate kycb-gate--locked">';
		$out .= '<p class="kycb-gate-message">' . esc_html( $message ) . '</p>';
		$out .= self::render_verify( self::user_type( $atts['type'] ) );
		$out .= '</div>';
		return $out;
	}

	/**
	 * The person's state and, when a verification may start, the button and the consent modal.
	 *
	 * @param string $type User type.
	 * @return string
	 */
	public static function render_verify( $type ) {
		++self::$instance;
		$id   = 'kycb-' . self::$instance;
		$link = is_user_logged_in() ? '' : self::link_token();

		if ( ! is_user_logged_in() && '' === $link ) {
			$login = wp_login_url( get_permalink() ? get_permalink() : home_url() );
			return sprintf(
				'<div class="kycb-verify kycb-verify--login"><p class="kycb-status">%1$s <a href="%2$s">%3$s</a></p></div>',
				esc_html__( 'Please log in to verify your identity.', 'kyc-bridge' ),
				esc_url( $login ),
				esc_html__( 'Log in', 'kyc-bridge' )
			);
		}

		if ( '' !== $link ) {
			$state = array(
				'status'    => 'link',
				'label'     => __( 'Identity verification', 'kyc-bridge' ),
				'message'   => __( 'Verify your identity to continue.', 'kyc-bridge' ),
				'can_start' => true,
				'button'    => __( 'Verify identity', 'kyc-bridge' ),
			);
		} else {
			$answer = Kyc_Lookup::for_user( get_current_user_id(), $type );
			if ( is_wp_error( $answer ) ) {
				return self::unavailable();
			}
			$state = array_merge( array( 'status' => (string) $answer['status'] ), Status::describe_answer( $answer ) );
		}

		$consent = null;
		if ( $state['can_start'] ) {
			$consent = Bridge_Client::from_settings()->consent_text();
			if ( is_wp_error( $consent ) ) {
				return self::unavailable();
			}
		}

		wp_enqueue_script( 'kycb-verify' );
		wp_enqueue_style( 'kycb-verify' );
		$config = array(
			'rest'          => esc_url_raw( rest_url( 'kyc-bridge/v1/sessions' ) ),
			'statusUrl'     => is_user_logged_in() ? esc_url_raw( add_query_arg( 'type', $type, rest_url( 'kyc-bridge/v1/status' ) ) ) : '',
			'nonce'         => wp_create_nonce( 'wp_rest' ),
			'type'          => $type,
			'link'          => $link,
			'personaScript' => self::persona_script_url(),
			'i18n'          => array(
				'starting'  => __( 'Starting the verification…', 'kyc-bridge' ),
				'checking'  => __( 'Thank you. We are checking your documents.', 'kyc-bridge' ),
				'cancelled' => __( 'The verification was not finished. You can continue later.', 'kyc-bridge' ),
				'failed'    => __( 'Verification could not start. Please try again later.', 'kyc-bridge' ),
				'loadError' => __( 'The verification window could not be loaded. Please try again later.', 'kyc-bridge' ),
			),
		);

		$html  = sprintf( '<div class="kycb-verify" id="%1$s" data-kycb="%2$s" data-status="%3$s">', esc_attr( $id ), esc_attr( wp_json_encode( $config ) ), esc_attr( $state['status'] ) );
		$html .= sprintf(
			'<p class="kycb-status" role="status" aria-live="polite"><strong class="kycb-status-label">%1$s</strong> <span class="kycb-status-message">%2$s</span></p>',
			esc_html( $state['label'] ),
			esc_html( $state['message'] )
		);
		if ( $state['can_start'] ) {
			$html .= sprintf(
				'<button type="button" class="kycb-open wp-element-button button" aria-haspopup="dialog" aria-controls="%1$s-dialog">%2$s</button>',
				esc_attr( $id ),
				esc_html( $state['button'] )
			);
			$html .= self::consent_modal( $id, $consent );
		}
		$html .= '</div>';
		return $html;
	}

	/**
	 * Shown when the bridge cannot answer: no button (fail closed).
	 *
	 * @return string
	 */
	private static function unavailable() {
		return '<div class="kycb-verify kycb-verify--unavailable" data-status="unavailable"><p class="kycb-status" role="status">'
			. esc_html__( 'We cannot check your verification right now. Please try again later.', 'kyc-bridge' )
			. '</p></div>';
	}

	/**
	 * The consent modal: a labelled dialog with the bridge's three consent texts.
	 *
	 * @param string $id      Element id prefix.
	 * @param array  $consent The bridge's consent text.
	 * @return string
	 */
	private static function consent_modal( $id, $consent ) {
		$boxes = isset( $consent['boxes'] ) && is_array( $consent['boxes'] ) ? $consent['boxes'] : array();
		$html  = sprintf( '<div class="kycb-backdrop" hidden><div class="kycb-dialog" id="%1$s-dialog" role="dialog" aria-modal="true" aria-labelledby="%1$s-title" aria-describedby="%1$s-intro">', esc_attr( $id ) );
		$html .= sprintf( '<h2 class="kycb-dialog-title" id="%1$s-title">%2$s</h2>', esc_attr( $id ), esc_html__( 'Your consent to identity verification', 'kyc-bridge' ) );
		$html .= sprintf( '<p id="%1$s-intro">%2$s</p>', esc_attr( $id ), esc_html( isset( $consent['intro'] ) ? $consent['intro'] : '' ) );
		$html .= '<form class="kycb-consent" novalidate>';
		$html .= sprintf( '<input type="hidden" name="text_version" value="%s" />', esc_attr( isset( $consent['version'] ) ? $consent['version'] : '' ) );
		$html .= '<fieldset><legend>' . esc_html__( 'All three are required', 'kyc-bridge' ) . '</legend>';
		foreach ( array( 'share_with_persona', 'persona_retention', 'gdpr_processing' ) as $box ) {
			$html .= sprintf(
				'<p class="kycb-box"><input type="checkbox" id="%1$s-%2$s" name="%2$s" value="yes" required aria-required="true" /> <label for="%1$s-%2$s">%3$s</label></p>',
				esc_attr( $id ),
				esc_attr( $box ),
				esc_html( isset( $boxes[ $box ] ) ? $boxes[ $box ] : '' )
			);
		}
		$html .= '</fieldset>';
		$html .= '<p class="kycb-error" role="alert" hidden></p>';
		$html .= sprintf( '<p id="%1$s-hint" class="kycb-hint">%2$s</p>', esc_attr( $id ), esc_html__( 'Tick all three boxes to continue.', 'kyc-bridge' ) );
		$html .= '<p class="kycb-actions">';
		$html .= sprintf( '<button type="submit" class="kycb-submit wp-element-button button" disabled aria-disabled="true" aria-describedby="%1$s-hint">%2$s</button> ', esc_attr( $id ), esc_html__( 'Continue to verification', 'kyc-bridge' ) );
		$html .= '<button type="button" class="kycb-cancel wp-element-button button is-style-outline">' . esc_html__( 'Cancel', 'kyc-bridge' ) . '</button>';
		$html .= '</p></form></div></div>';
		return $html;
	}
}
